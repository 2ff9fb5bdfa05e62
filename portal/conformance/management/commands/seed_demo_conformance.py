from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor
from portal.conformance.models import ConformanceRun
from portal.conformance.scenarios import SCENARIOS
from portal.conformance.services import RunRefused, run_create
from portal.mailboxes.models import Mailbox

# The demo's run: every scenario but the long high-volume one, between two sandbox mailboxes.
DEMO_RUN_PAIR = ("X26ABC1", "X26ABC2")


class Command(BaseCommand):
    help = (
        "Queue a real conformance run of X26ABC1 with X26ABC2 (every scenario but high volume) "
        "for the workers, started by mailbox-admin, unless X26ABC1 has had one (idempotent; run "
        "seed_demo first)."
    )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo_conformance is for development only.")
        mailbox, peer = (Mailbox.objects.filter(mailbox_id=m).first() for m in DEMO_RUN_PAIR)
        if mailbox is None or peer is None:
            raise CommandError("Run seed_demo first: it creates X26ABC1 and X26ABC2.")
        if ConformanceRun.objects.filter(mailbox=mailbox).exists():
            self.stdout.write(f"{mailbox.mailbox_id} already has a conformance run.")
            return
        admin = get_user_model().objects.filter(username="mailbox-admin").first()
        try:
            run_create(
                mailbox=mailbox,
                peer=peer,
                scenario_keys=[key for key in SCENARIOS if key != "high_volume"],
                actor=Actor.person(user=admin),
            )
        except RunRefused as exc:
            raise CommandError(f"No demo conformance run: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Conformance run of {mailbox.mailbox_id} with {peer.mailbox_id} queued: the "
                "workers carry it out against mesh-sandbox once started."
            )
        )
