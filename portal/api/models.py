"""API tokens for systems (not people), their scoped grants, and idempotency keys for sends."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.accounts import reach
from portal.mailboxes.models import Mailbox

TOKEN_PREFIX = "nmk"
# A read scope's workflow pattern: a workflow id, or a prefix of one ending in `*`.
WORKFLOW_PATTERN_RE = re.compile(r"^[A-Za-z0-9_\-.]{0,300}\*?$")
# An idempotency reservation with no message this old belongs to a request that died.
STALE_RESERVATION = timedelta(minutes=15)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Scope(models.TextChoices):
    MESSAGES_SEND = "messages:send", "Send messages"
    MESSAGES_READ = "messages:read", "Read messages"
    PAYLOADS_READ = "payloads:read", "Download and confirm payloads"
    EVENTS_READ = "events:read", "Read events"


class ApiTokenQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Tokens owned by people `user` may see whose grants name no mailbox out of reach, so a
        token's page never shows another organisation's mailbox."""
        if reach.sees_everything(user):
            return self
        outside = Mailbox.objects.exclude(pk__in=reach.mailboxes_for(user).values("pk"))
        owned = self.filter(owner__in=reach.people_for(user).values("pk"))
        return owned.exclude(grants__mailboxes__in=outside.values("pk"))

    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    """A named credential for one system. Only the sha256 of its secret is kept.

    The full token reads `nmk_<key_id>_<secret>`: the key id finds the row, the secret's hash is
    compared in constant time.
    """

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        help_text="The person answerable for the system that uses this token.",
    )
    key_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_per_minute = models.PositiveIntegerField(
        default=600, help_text="Calls allowed per minute; beyond it the API answers 429."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_PREFIX}_{self.key_id})"

    @classmethod
    def new_secret(cls) -> tuple[str, str, str]:
        """A fresh (key id, secret, full token)."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        return key_id, secret, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def grant_for(self, scope: str) -> ApiGrant | None:
        return next((g for g in self.grants.all() if g.scope == scope), None)


class ApiGrant(models.Model):
    """One scope of a token, limited to chosen mailboxes and (for reads) workflow patterns."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="grants")
    scope = models.CharField(max_length=20, choices=Scope.choices)
    mailboxes = models.ManyToManyField("mailboxes.Mailbox", related_name="+")
    # One pattern a line: an exact workflow id, or a prefix ending in `*`. Empty: every workflow.
    workflow_patterns = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "scope"], name="api_grant_one_per_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope} for {self.token}"

    def patterns(self) -> list[str]:
        return [p.strip() for p in self.workflow_patterns.splitlines() if p.strip()]

    def allows_workflow(self, workflow_id: str) -> bool:
        patterns = self.patterns()
        return not patterns or any(
            workflow_id.startswith(p[:-1]) if p.endswith("*") else workflow_id == p
            for p in patterns
        )

    def workflow_q(self, field: str = "workflow_id") -> models.Q:
        """The same rule as allows_workflow, as a filter on `field` (Message.workflow_id)."""
        if not self.patterns():
            return models.Q()
        query = models.Q(pk__in=[])
        for pattern in self.patterns():
            if pattern.endswith("*"):
                query |= models.Q(**{f"{field}__startswith": pattern[:-1]})
            else:
                query |= models.Q(**{field: pattern})
        return query


class IdempotencyKey(models.Model):
    """A caller's key for one send from one mailbox: a repeat returns this message, never a new one."""

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=300)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "key"], name="api_idempotency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} on {self.mailbox_id}"
