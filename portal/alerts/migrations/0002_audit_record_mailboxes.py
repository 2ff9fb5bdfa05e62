# Records about alerts carry the alert's mailbox, so the audit trail narrows to a person's reach
# by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import fill_record_mailboxes


def fill(apps, schema_editor):
    fill_record_mailboxes(
        schema_editor, "alerts.alert", "SELECT mailbox_id FROM alerts_alert WHERE id = {id}"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("alerts", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
