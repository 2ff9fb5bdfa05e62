# The trail's actor filter reads a case-folded copy of each record's actor label (not sealed: the
# label it comes from is). Filled for the records already there, one UPDATE per distinct label.

from django.conf import settings
from django.db import migrations, models


def fill_actor_keys(apps, schema_editor):
    from portal.audit.models import actor_key

    # The historical model's plain manager: this fills a derived, unsealed column only.
    records = apps.get_model("audit", "AuditRecord").objects
    for label in records.values_list("actor_label", flat=True).distinct().order_by():
        records.filter(actor_label=label).update(actor_key=actor_key(label))


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0006_verification_run_permission'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='auditrecord',
            name='actor_key',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
        migrations.RunPython(fill_actor_keys, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='auditrecord',
            name='audit_actor_seq',
        ),
        migrations.AddIndex(
            model_name='auditrecord',
            index=models.Index(fields=['actor_key', '-seq'], name='audit_actor_key_seq'),
        ),
    ]
