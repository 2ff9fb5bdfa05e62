# MessageCount and Heartbeat moved from portal.ops (issue 10): the same tables, only the state moves.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxes', '0001_initial'),
        ('messaging', '0008_mesh_rules'),
        ('ops', '0002_message_counts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Heartbeat',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=50, unique=True)),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('by', models.CharField(blank=True, max_length=200)),
                    ],
                    options={
                        'db_table': 'ops_heartbeat',
                    },
                ),
                migrations.CreateModel(
                    name='MessageCount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('direction', models.CharField(max_length=3)),
                        ('event', models.CharField(choices=[('moved', 'Accepted by MESH (out) or downloaded from MESH (in)'), ('failed', 'Failed: rejected, undeliverable, or given up')], max_length=10)),
                        ('code', models.CharField(blank=True, max_length=20)),
                        ('messages', models.BigIntegerField(default=0)),
                        ('bytes', models.BigIntegerField(default=0)),
                        ('mailbox', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='mailboxes.mailbox')),
                    ],
                    options={
                        'db_table': 'ops_messagecount',
                        'constraints': [models.UniqueConstraint(fields=('mailbox', 'direction', 'event', 'code'), name='ops_messagecount_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
