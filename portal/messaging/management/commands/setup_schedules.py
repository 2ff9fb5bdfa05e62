from django.core.management.base import BaseCommand

from portal.lib.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update NeoMesh's recurring worker jobs (also done after every migrate)."

    def handle(self, *args, **options):
        count = ensure_schedules()
        self.stdout.write(self.style.SUCCESS(f"{count} schedules in place."))
