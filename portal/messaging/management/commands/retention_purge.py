"""Purge payloads past their retention rule now, or list what would be purged (--dry-run)."""

from django.core.management.base import BaseCommand, CommandError

from portal.messaging.models import RetentionRule
from portal.messaging.retention import retention_sweep


class Command(BaseCommand):
    help = (
        "Purge every payload past its retention rule (the workers do this hourly), or with "
        "--dry-run list what would be purged and change nothing. Held and undelivered payloads are "
        "never purged."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List, change nothing.")
        parser.add_argument("--rule", help="Only this rule (by name), e.g. to preview a new one.")

    def handle(self, *args, dry_run=False, rule=None, **options):
        chosen = None
        if rule:
            chosen = RetentionRule.objects.filter(name=rule).first()
            if chosen is None:
                names = ", ".join(RetentionRule.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No retention rule named {rule!r} (rules: {names}).")
        result = retention_sweep(dry_run=dry_run, rule=chosen)
        if dry_run:
            for message, governing in result["would_purge"]:
                self.stdout.write(
                    f"message {message.pk}\t{message.mailbox_id}\t{message.direction}\t"
                    f"{message.workflow_id}\t{message.size_bytes or 0} bytes\trule “{governing.name}”"
                )
            self.stdout.write(f"{len(result['would_purge'])} payloads would be purged.")
            return
        for problem in result["failed"]:
            self.stderr.write(problem)
        self.stdout.write(
            f"{result['purged']} payloads purged, {len(result['failed'])} could not be removed."
        )
        if result["failed"]:
            raise SystemExit(1)
