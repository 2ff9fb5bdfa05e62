# The message search's word index (portal.messaging.search), filled for the messages already stored.

import django.db.models.deletion
from django.db import migrations, models


def index_existing(apps, schema_editor):
    from portal.messaging.search import rebuild_words

    rebuild_words(
        message_model=apps.get_model("messaging", "Message"),
        word_model=apps.get_model("messaging", "MessageWord"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0009_counts_and_heartbeats_from_ops'),
    ]

    operations = [
        migrations.CreateModel(
            name='MessageWord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('word', models.CharField(max_length=50)),
                ('message', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='messaging.message')),
            ],
            options={
                'indexes': [models.Index(fields=['word', 'message'], name='msgword_word_message')],
            },
        ),
        migrations.RunPython(index_existing, migrations.RunPython.noop),
    ]
