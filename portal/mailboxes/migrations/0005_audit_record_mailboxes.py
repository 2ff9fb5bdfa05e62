# Records about a mailbox carry its pk, so the audit trail narrows to a person's
# reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("mailboxes", "0004_send_rules_and_business_acks"),
    ]

    operations = [
        record_mailboxes_filled(
            ("mailboxes.mailbox", "SELECT id FROM mailboxes_mailbox WHERE id = {id}"),
        )
    ]
