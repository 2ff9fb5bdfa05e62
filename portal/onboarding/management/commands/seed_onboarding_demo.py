from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from portal.audit.services import Actor
from portal.certificates.services import certificate_create_csr
from portal.mailboxes.models import Environment, Mailbox, Organisation
from portal.onboarding import correspondence as letters
from portal.onboarding.models import CorrespondenceKind, Plan
from portal.onboarding.plans import TEMPLATES
from portal.onboarding.services import (
    allowlist_add,
    decision_record,
    plan_create,
    task_link_certificate,
)

DEMO_LIVE_MAILBOX = "X26LIVE1"
DEMO_INT_MAILBOX = "X26INT01"
# What the demo plan records as NHS England's answer and the trust's egress (made up, marked so).
DEMO_REPLY = (
    "(Demo reply) Thank you for letting us know. Changing the client's language does not affect "
    "your Technical Conformance Certificate: it remains valid. Request the live mailbox, then "
    "send the live CSR with the certificate to this desk."
)
DEMO_TICKET = "CS-DEMO-0001"
DEMO_EGRESS = "81.2.69.160"


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
        parser.add_argument(
            "--realistic",
            action="store_true",
            help="With --plan: a plan some weeks in (the question to NHS England sent and "
            "answered, the egress address listed, the live CSR made and linked), as `make run` "
            "seeds it.",
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
            realistic = options["realistic"]
            plan = plan_create(
                template=TEMPLATES["client-change"],
                organisation=organisation,
                owner=owner,
                target_mailbox=live,
                integration_mailbox=integration,
                start_date=timezone.localdate() - timedelta(days=21) if realistic else None,
                actor=Actor.person(user=owner),
            )
            message += " Client-change plan started."
            if realistic:
                self._progress(plan, owner)
                message += " Its first weeks recorded."
        self.stdout.write(self.style.SUCCESS(message))

    def _progress(self, plan: Plan, lead) -> None:
        """What a lead would have done by week three, through the same services as the pages."""
        actor = Actor.person(user=lead)
        query = letters.correspondence_draft(
            plan=plan, kind=CorrespondenceKind.NSD_CHANGE_QUERY, actor=actor
        )
        letters.correspondence_mark_sent(
            correspondence=query,
            sent_on=timezone.localdate() - timedelta(days=14),
            ticket_reference=DEMO_TICKET,
            actor=actor,
        )
        decision_record(
            decision=plan.decisions.get(answers=query.task),
            option_key="valid",
            reply_text=DEMO_REPLY,
            ticket_reference=DEMO_TICKET,
            actor=actor,
        )
        allowlist_add(
            organisation=plan.organisation,
            environment=Environment.LIVE,
            address=DEMO_EGRESS,
            purpose="(Demo) production NAT gateway: replace with your own egress address",
            user=lead,
        )
        csr = certificate_create_csr(mailbox=plan.target_mailbox, actor=actor)
        task_link_certificate(task=plan.tasks.get(key="production-csr"), certificate=csr, user=lead)

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
