# MessageCount and Heartbeat moved to portal.messaging (issue 10): their tables stay as they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('ops', '0002_message_counts'),
        ('messaging', '0009_counts_and_heartbeats_from_ops'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Heartbeat'),
                migrations.DeleteModel(name='MessageCount'),
            ],
            database_operations=[],
        ),
    ]
