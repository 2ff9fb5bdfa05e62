# The message's created_at in each of its word entries, and an index on (word, created_at,
# message): the message search reads a word's entries in the list's order (search.WordWalk).
# One UPDATE over the word index: about 6 entries a message, each looked up by its message's id.

from django.db import migrations, models

FILL = (
    "UPDATE messaging_messageword SET created_at = messaging_message.created_at "
    "FROM messaging_message WHERE messaging_message.id = messaging_messageword.message_id"
)


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0011_audit_record_mailboxes"),
    ]

    operations = [
        migrations.AddField(
            model_name="messageword",
            name="created_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="messageword",
            name="created_at",
            field=models.DateTimeField(),
        ),
        migrations.AddIndex(
            model_name="messageword",
            index=models.Index(
                fields=["word", "created_at", "message"], name="msgword_word_created"
            ),
        ),
    ]
