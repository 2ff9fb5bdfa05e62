# Records about deliveries carry their message's mailbox, so the audit trail narrows to a
# person's reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import fill_record_mailboxes


def fill(apps, schema_editor):
    fill_record_mailboxes(
        schema_editor,
        "integrations.delivery",
        "SELECT m.mailbox_id FROM integrations_delivery d "
        "JOIN messaging_message m ON m.id = d.message_id WHERE d.id = {id}",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("integrations", "0004_destination_kind_azure"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
