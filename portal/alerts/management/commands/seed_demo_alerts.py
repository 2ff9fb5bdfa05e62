from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from portal.alerts.services import default_rules_ensure


class Command(BaseCommand):
    help = "The demo's default alert rule: every error to the admins' email (idempotent)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo_alerts is for development only.")
        emails = [
            u.email or f"{u.username}@localhost" for u in User.objects.filter(is_superuser=True)
        ]
        rule = default_rules_ensure(admin_emails=emails or ["admin@localhost"])
        self.stdout.write(self.style.SUCCESS(f"Alert rule ready: {rule}."))
