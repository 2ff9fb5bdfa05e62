# Records about deliveries carry their message's mailbox, so the audit trail narrows to a
# person's reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("integrations", "0004_destination_kind_azure"),
    ]

    operations = [
        record_mailboxes_filled(
            (
                "integrations.delivery",
                "SELECT m.mailbox_id FROM integrations_delivery d "
                "JOIN messaging_message m ON m.id = d.message_id WHERE d.id = {id}",
            ),
        )
    ]
