"""Create, list, expire and revoke API tokens from the command line (audited as the OS user)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.api.models import ApiToken, Scope
from portal.api.services import GrantSpec, describe, token_create, token_expire, token_revoke
from portal.mailboxes.models import Mailbox

SCOPE_HELP = (
    "SCOPE=MAILBOX[,MAILBOX...][:WORKFLOW[,WORKFLOW...]], repeatable; e.g. "
    "messages:send=X26ABC1 or messages:read=X26ABC1:TEST_*. Scopes: " + ", ".join(Scope.values)
)


class Command(BaseCommand):
    help = "Manage API tokens for systems: create (the secret is shown once), list, expire, revoke."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print its secret once.")
        create.add_argument("--name", required=True)
        create.add_argument("--owner", required=True, help="Username of the person answerable.")
        create.add_argument("--scope", action="append", required=True, help=SCOPE_HELP)
        create.add_argument("--days", type=int, default=90, help="Days until it expires.")
        create.add_argument("--rate", type=int, default=600, help="Calls allowed per minute.")
        sub.add_parser("list", help="List tokens (never their secrets).")
        for name in ("expire", "revoke"):
            one = sub.add_parser(name, help=f"{name.capitalize()} a token now.")
            one.add_argument("key_id", help="The key id (the part after nmk_) or the token's id.")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _create(self, *, name, owner, scope, days, rate, **_):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user {owner!r}.")
        if days < 1:
            raise CommandError("--days must be at least 1.")
        grants = [_parse_scope(text) for text in scope]
        expires_at = timezone.now() + timedelta(days=days)
        try:
            token, secret = token_create(
                name=name, owner=user, grants=grants, expires_at=expires_at, rate_per_minute=rate
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created {token}: {describe(token)}")
        self.stdout.write("The secret, shown this once (store it now; NeoMesh keeps only a hash):")
        self.stdout.write(secret)

    def _list(self, **_):
        now = timezone.now()
        for token in ApiToken.objects.select_related("owner").prefetch_related("grants__mailboxes"):
            used = (
                f"last used {token.last_used_at:%Y-%m-%d %H:%M} from {token.last_used_ip}"
                if (token.last_used_at)
                else "never used"
            )
            self.stdout.write(
                f"{token.key_id}  {token.name}  {token.state(now)}  {used}  {describe(token)}"
            )

    def _expire(self, *, key_id, **_):
        token = token_expire(token=_get(key_id))
        self.stdout.write(f"{token} expired at {token.expires_at:%Y-%m-%d %H:%M}.")

    def _revoke(self, *, key_id, **_):
        token = token_revoke(token=_get(key_id))
        self.stdout.write(f"{token} revoked.")


def _get(key_id: str) -> ApiToken:
    key_id = key_id.removeprefix("nmk_").split("_")[0]
    token = ApiToken.objects.filter(key_id=key_id).first()
    if token is None and key_id.isdigit():
        token = ApiToken.objects.filter(pk=int(key_id)).first()
    if token is None:
        raise CommandError(f"No token {key_id!r}: see `manage.py api_token list`.")
    return token


def _parse_scope(text: str) -> GrantSpec:
    scope, _, rest = text.partition("=")
    if scope not in Scope.values or not rest:
        raise CommandError(f"--scope {text!r}: expected {SCOPE_HELP}.")
    boxes, _, workflows = rest.partition(":")
    ids = [b.strip().upper() for b in boxes.split(",") if b.strip()]
    mailboxes = list(Mailbox.objects.filter(mailbox_id__in=ids))
    missing = set(ids) - {m.mailbox_id for m in mailboxes}
    if missing:
        raise CommandError(f"--scope {text!r}: no mailbox {', '.join(sorted(missing))}.")
    patterns = [w.strip() for w in workflows.split(",") if w.strip()]
    return GrantSpec(scope=scope, mailboxes=mailboxes, workflow_patterns=patterns)
