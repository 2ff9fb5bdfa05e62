# Records about conformance runs carry their mailbox, so the audit trail narrows to a person's
# reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("conformance", "0002_run_heartbeat"),
    ]

    operations = [
        record_mailboxes_filled(
            (
                "conformance.conformancerun",
                "SELECT mailbox_id FROM conformance_conformancerun WHERE id = {id}",
            ),
        )
    ]
