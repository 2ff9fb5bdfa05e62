# Records about messages and inbound failures carry their mailbox, so the audit trail narrows to a
# person's reach by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import fill_record_mailboxes


def fill(apps, schema_editor):
    fill_record_mailboxes(
        schema_editor,
        "messaging.message",
        "SELECT mailbox_id FROM messaging_message WHERE id = {id}",
    )
    fill_record_mailboxes(
        schema_editor,
        "messaging.inboundfailure",
        "SELECT mailbox_id FROM messaging_inboundfailure WHERE id = {id}",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("messaging", "0010_message_words"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
