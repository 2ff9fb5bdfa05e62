# Records about messages and inbound failures carry their mailbox, so the audit trail narrows to a
# person's reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("messaging", "0010_message_words"),
    ]

    operations = [
        record_mailboxes_filled(
            ("messaging.message", "SELECT mailbox_id FROM messaging_message WHERE id = {id}"),
            (
                "messaging.inboundfailure",
                "SELECT mailbox_id FROM messaging_inboundfailure WHERE id = {id}",
            ),
        )
    ]
