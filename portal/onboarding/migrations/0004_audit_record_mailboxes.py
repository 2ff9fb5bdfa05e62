# Records about gate overrides carry their mailbox, so the audit trail narrows to a person's
# reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("onboarding", "0003_task_checked_evidence"),
    ]

    operations = [
        record_mailboxes_filled(
            (
                "onboarding.gateoverride",
                "SELECT mailbox_id FROM onboarding_gateoverride WHERE id = {id}",
            ),
        )
    ]
