from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.mailboxes.models import Environment, Mailbox, Organisation
from portal.onboarding.models import Plan
from portal.onboarding.plans import TEMPLATES
from portal.onboarding.services import plan_create

DEMO_LIVE_MAILBOX = "X26LIVE1"
DEMO_INT_MAILBOX = "X26INT01"


class Command(BaseCommand):
    help = (
        "Add demo onboarding data for Demo Org (X26): a live and an integration mailbox without "
        "credentials (so nothing reaches NHS England), and with --plan a client-change plan "
        "(idempotent; run seed_demo first)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--plan", action="store_true", help="Also start the client-change plan."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_onboarding_demo is for development only.")
        organisation = Organisation.objects.filter(ods_code="X26").first()
        if organisation is None:
            raise CommandError("Run seed_demo first: it creates Demo Org (X26).")
        live = self._mailbox(organisation, DEMO_LIVE_MAILBOX, Environment.LIVE)
        integration = self._mailbox(organisation, DEMO_INT_MAILBOX, Environment.INTEGRATION)
        message = (
            f"Demo onboarding mailboxes ready: {live.mailbox_id} (live), {integration.mailbox_id}."
        )
        if (
            options["plan"]
            and not Plan.objects.filter(
                organisation=organisation, environment=Environment.LIVE
            ).exists()
        ):
            owner = get_user_model().objects.filter(username="onboarding-lead").first()
            plan_create(
                template=TEMPLATES["client-change"],
                organisation=organisation,
                owner=owner,
                target_mailbox=live,
                integration_mailbox=integration,
            )
            message += " Client-change plan started."
        self.stdout.write(self.style.SUCCESS(message))

    def _mailbox(self, organisation: Organisation, mailbox_id: str, environment: str) -> Mailbox:
        mailbox, _ = Mailbox.objects.get_or_create(
            mailbox_id=mailbox_id,
            defaults={
                "organisation": organisation,
                "environment": environment,
                "name": f"Demo {environment} mailbox (no credentials: onboarding demo only)",
            },
        )
        return mailbox
