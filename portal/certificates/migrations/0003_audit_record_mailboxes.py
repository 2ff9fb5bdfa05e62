# Records about certificates carry their mailbox, so the audit trail narrows to a person's
# reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("certificates", "0002_expiry_warned_days"),
    ]

    operations = [
        record_mailboxes_filled(
            (
                "certificates.certificate",
                "SELECT mailbox_id FROM certificates_certificate WHERE id = {id}",
            ),
        )
    ]
