# Records about alerts carry the alert's mailbox, so the audit trail narrows to a person's reach
# by mailbox (AuditRecord.within): filled here for the records already sealed.

from django.db import migrations

from portal.audit.backfill import record_mailboxes_filled


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_record_mailbox"),
        ("alerts", "0001_initial"),
    ]

    operations = [
        record_mailboxes_filled(
            ("alerts.alert", "SELECT mailbox_id FROM alerts_alert WHERE id = {id}"),
        )
    ]
