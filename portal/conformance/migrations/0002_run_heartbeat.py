from django.db import migrations, models
from django.db.models import F


def runs_alive_when_last_saved(apps, schema_editor):
    """Unfinished runs from before the heartbeat: their last sign of life is their last save."""
    ConformanceRun = apps.get_model("conformance", "ConformanceRun")
    ConformanceRun.objects.filter(status__in=["queued", "running"]).update(
        heartbeat_at=F("updated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conformance", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="conformancerun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conformancerun",
            name="requeued",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="conformancerun",
            index=models.Index(fields=["status", "heartbeat_at"], name="conformance_run_heartbeat"),
        ),
        migrations.RunPython(runs_alive_when_last_saved, migrations.RunPython.noop),
    ]
