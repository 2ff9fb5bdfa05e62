from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from portal.accounts import roles
from portal.accounts.models import Membership
from portal.mailboxes.models import Environment, Mailbox, Organisation, Workflow

# The mesh-sandbox's public test values (never real credentials).
SANDBOX_PASSWORD = "password"
DEMO_PASSWORD = "neomesh-demo"
# Workflows as the sandbox registers them: (workflow, sender, receivers).
SANDBOX_WORKFLOWS = [
    ("TEST_WORKFLOW", "X26ABC1", ["X26ABC2"]),
    ("TEST_WORKFLOW_ACK", "X26ABC2", ["X26ABC1", "X26ABC3"]),
    ("TEST_WORKFLOW2", "X26ABC1", ["X26ABC1", "X26ABC2", "X26ABC3"]),
]
DEMO_USERS = [
    ("admin", None, True),
    ("mailbox-admin", roles.MAILBOX_ADMIN, False),
    ("onboarding-lead", roles.ONBOARDING_LEAD, False),
    ("auditor", roles.AUDITOR, False),
]


class Command(BaseCommand):
    help = "Create the demo organisation, sandbox mailboxes X26ABC1-3 and one user per role (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo is for development only; it will not run in production mode."
            )
        org, _ = Organisation.objects.get_or_create(ods_code="X26", defaults={"name": "Demo Org"})
        for mailbox_id in ("X26ABC1", "X26ABC2", "X26ABC3"):
            self._mailbox(org, mailbox_id)
        for workflow_id, sender, receivers in SANDBOX_WORKFLOWS:
            self._workflow(sender, workflow_id, Workflow.Direction.SEND)
            for receiver in receivers:
                self._workflow(receiver, workflow_id, Workflow.Direction.RECEIVE)
        roles.ensure_roles()
        for username, role, is_superuser in DEMO_USERS:
            self._user(username, role, is_superuser, org)
        self.stdout.write(
            self.style.SUCCESS("Demo data ready: Demo Org (X26), mailboxes X26ABC1-3.")
        )

    def _mailbox(self, org: Organisation, mailbox_id: str) -> None:
        mailbox, created = Mailbox.objects.get_or_create(
            mailbox_id=mailbox_id,
            defaults={
                "organisation": org,
                "environment": Environment.SANDBOX,
                "name": f"Demo {mailbox_id}",
            },
        )
        if created or not mailbox.password:
            now = timezone.now()
            mailbox.password, mailbox.password_changed_at = SANDBOX_PASSWORD, now
            mailbox.shared_key, mailbox.shared_key_changed_at = (
                settings.MESH_SANDBOX_SHARED_KEY,
                now,
            )
            mailbox.save()

    def _workflow(self, mailbox_id: str, workflow_id: str, direction: str) -> None:
        Workflow.objects.get_or_create(
            mailbox=Mailbox.objects.get(mailbox_id=mailbox_id),
            workflow_id=workflow_id,
            direction=direction,
        )

    def _user(self, username: str, role: str | None, is_superuser: bool, org) -> None:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
        user.is_superuser = user.is_staff = is_superuser
        user.save()
        # Reach (portal.accounts.reach): the demo organisation, and, like every person who
        # existed before reach, every organisation (the journeys' auditor reads the whole trail).
        Membership.objects.get_or_create(user=user, organisation=org)
        user.user_permissions.add(
            Permission.objects.get(
                content_type__app_label="accounts", codename="every_organisation"
            )
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
