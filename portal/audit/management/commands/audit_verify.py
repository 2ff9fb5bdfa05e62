from django.core.management.base import BaseCommand, CommandError

from portal.audit.verify import verify_and_record


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero naming the first broken link."

    def handle(self, *args, **options):
        report = verify_and_record()
        if not report.ok:
            where = f" at record #{report.first_broken_seq}" if report.first_broken_seq else ""
            raise CommandError(f"Audit chain broken{where}: {report.problem}")
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} records verified.")
        )
