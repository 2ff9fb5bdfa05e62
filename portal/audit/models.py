"""The audit trail: append-only records sealed in a keyed hash chain.

Each record's hash covers its own content and the previous record's hash, so altering, removing or
reordering any record breaks the chain from that point (`manage.py audit_verify` names where). The
hash is an HMAC under a key held outside the database (`portal.audit.sealing`), so nobody with
only database access can re-seal a rewritten history; records from before keys were introduced
(no `key_id`) are plain SHA-256 and still verify.
"""

from __future__ import annotations

import json

from django.apps import apps
from django.conf import settings
from django.db import connections, models
from django.db.models import BooleanField, Case, Q, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from portal.lib.pagination import KeysetPage, walked_values


class AppendOnlyError(Exception):
    """Audit records are never updated or deleted."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit records cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit records cannot be deleted.")

    def for_object(self, obj):
        return self.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))

    def within(self, reach):
        """Records a person may read, given their reach (`request.reach`, portal.accounts.reach):
        all for those who see everything; else their own, and those about an object within reach.

        Records about an object of a model naming an `audit_mailbox` (mailboxes, messages, their
        deliveries and failures, alerts, certificates, conformance runs, gate overrides: whatever
        stays with one mailbox) carry that mailbox (`mailbox_pk`, set when sealed), so they are
        read against the person's few mailboxes, never against millions of object ids.
        Every other model whose QuerySet has `within_reach(user)` says which of its rows are in
        reach. Records about nothing, or about people, tokens' secrets or the system, stay hidden.

        For someone whose reach holds every mailbox, the terms are ORed inside one CASE, which no
        index answers: the trail then walks `seq` (or a filter's own index) and checks each
        record. As a plain OR, SQLite read every record of each term through its index and sorted
        them (17 s for a member's first page at 20M). For a narrower reach the plain OR stays:
        the indexes then find the person's few records instead of a walk past everyone else's.
        """
        if reach.sees_everything:
            return self
        rows = Q(actor=reach.user.pk)
        mailboxes = reach.mailbox_pks
        by_mailbox = []
        for model in apps.get_models():
            manager = model._default_manager
            if model is self.model or not hasattr(manager, "within_reach"):
                continue
            if getattr(model, "audit_mailbox", None):
                by_mailbox.append(model._meta.label_lower)
                continue
            ids = (
                manager.within_reach(reach.user)
                .order_by()
                .annotate(audit_id=Cast("pk", output_field=models.CharField()))
            )
            rows |= Q(object_type=model._meta.label_lower, object_id__in=ids.values("audit_id"))
        if by_mailbox and mailboxes:
            rows |= Q(object_type__in=by_mailbox, mailbox_pk__in=mailboxes)
        if not reach.holds_every_mailbox:
            return self.filter(rows)
        return self.filter(
            Case(When(rows, then=Value(True)), default=Value(False), output_field=BooleanField())
        )

    def sealed_between(self, start=None, end=None):
        """Records sealed in [start, end): the seq range found through the `at` index.

        Records are sealed under the chain head's lock and never dated before the record they
        follow (`ChainHead.last_at`), so `at` never falls as `seq` rises: the seq range is exactly
        the time range. A page then walks the seq index (or an index ending in seq) in order and
        stops after one page. The times are not tested again: PostgreSQL took the two ranges for
        independent and intersected the day's every `at` entry with the other filter's index
        (38 ms to count one actor's day at 20M records).
        """
        records = self.model.objects
        rows = self
        if start is not None:
            # Records sealed together share one time: the first of them, by seq.
            first = (
                records.filter(at__gte=start)
                .order_by("at", "seq")
                .values_list("seq", flat=True)[:1]
            )
            if not (first := list(first)):
                return self.none()
            rows = rows.filter(seq__gte=first[0])
        if end is not None:
            last = (
                records.filter(at__lt=end).order_by("-at", "-seq").values_list("seq", flat=True)[:1]
            )
            if not (last := list(last)):
                return self.none()
            rows = rows.filter(seq__lte=last[0])
        return rows

    def actor_keys_starting(self, start: str, limit: int) -> list[str] | None:
        """The distinct actor keys starting with `start`, one index seek each; None past `limit`.

        The seeks are one recursive query (each key the least one above the last), so a prefix
        of twenty actors is one round trip to the database, not twenty-one.
        """
        connection = connections[self.db]
        table = connection.ops.quote_name(self.model._meta.db_table)
        top = start + "\U0010ffff"
        sql = (
            f"WITH RECURSIVE found(k) AS ("
            f" SELECT (SELECT min(actor_key) FROM {table} WHERE actor_key >= %s AND actor_key < %s)"
            f" UNION ALL SELECT (SELECT min(actor_key) FROM {table}"
            f" WHERE actor_key > found.k AND actor_key < %s) FROM found WHERE found.k IS NOT NULL"
            f") SELECT k FROM found WHERE k IS NOT NULL LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [start, top, top, limit + 1])
            keys = [key for (key,) in cursor.fetchall()]
        return keys if len(keys) <= limit else None

    def merged_walks(self, field: str, values: list, *, after=None, before=None, size: int = 50):
        """The rows of one keyset page among `self` where `field` is any of `values`.

        One walk of the (field, -seq) index per value, each stopping after a page, merged by seq:
        with `field IN (...)` a database sorts every matching record to show one page. The walks'
        seqs are read first and the merge looks them up alone, so that no planner picks an index
        for a filter again (ORed as subqueries, PostgreSQL walked the seq index testing each).
        """
        after, before = _seq(after), _seq(before)
        if before is not None:
            edge, order = models.Q(seq__gt=before), "seq"
        else:
            edge, order = (models.Q(seq__lt=after) if after is not None else models.Q()), "-seq"
        walks = [
            self.filter(edge, **{field: value})
            .order_by(order)
            .values_list("seq", flat=True)[: size + 1]
            for value in values
        ]
        return self.model.objects.filter(seq__in=walked_values(walks))

    def keyset_page(self, *, after=None, before=None, size: int = 50):
        """One page, newest first, older than seq `after` or newer than seq `before`; no COUNT.

        One row more than the page is fetched, to know whether another page follows.
        """
        after, before = _seq(after), _seq(before)
        if before is not None:
            rows = list(self.filter(seq__gt=before).order_by("seq")[: size + 1])
            items = list(reversed(rows[:size]))
            more_newer = len(rows) > size
            return KeysetPage(
                items=items,
                next_cursor=str(items[-1].seq) if items else None,
                prev_cursor=str(items[0].seq) if items and more_newer else None,
            )
        rows = self.filter(seq__lt=after) if after is not None else self
        rows = list(rows.order_by("-seq")[: size + 1])
        items = rows[:size]
        return KeysetPage(
            items=items,
            next_cursor=str(items[-1].seq) if len(rows) > size else None,
            prev_cursor=str(items[0].seq) if after is not None and items else None,
        )


def actor_key(label: str) -> str:
    """An actor label as the filter compares it: case-folded, spaces collapsed."""
    return " ".join((label or "").casefold().split())[:200]


def _seq(value) -> int | None:
    """A cursor from a link: a positive number, or None (a mangled link shows the first page)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


class AuditRecord(models.Model):
    class ActorKind(models.TextChoices):
        PERSON = "person", "Person"
        WORKER = "worker", "Worker"
        SYSTEM = "system", "System"
        TOKEN = "token", "API token"

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    # The label case-folded, for the trail's actor filter (a prefix range on an index, any case).
    # Not sealed: it is derived from actor_label, which is.
    actor_key = models.CharField(max_length=200, blank=True, default="")
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    detail = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # Which AUDIT_CHAIN_KEYS key sealed it; blank for the plain SHA-256 records sealed before keys.
    key_id = models.CharField(max_length=20, blank=True, default="")
    # The mailbox of the record's object, for models naming an `audit_mailbox` (the attribute that
    # holds it), so the trail narrows to a person's reach by their few mailboxes (`within`).
    # Not sealed: derived from the object, as actor_key is.
    mailbox_pk = models.BigIntegerField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            # Audit browser: newest first, filtered by action, actor or object.
            models.Index(fields=["action", "-seq"], name="audit_action_seq"),
            models.Index(fields=["actor_key", "-seq"], name="audit_actor_key_seq"),
            models.Index(fields=["object_type", "object_id", "-seq"], name="audit_object_seq"),
            # Audit browser (audit:trail) by object type alone: without it every record of a common
            # type (messages) is sorted to show one page.
            models.Index(fields=["object_type", "-seq"], name="audit_type_seq"),
            models.Index(fields=["at"], name="audit_at"),
        ]
        permissions = [("export_auditrecord", "Can export audit records and message logs")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit records cannot be changed.")
        self.actor_key = actor_key(self.actor_label)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit records cannot be deleted.")

    def sealed_content(self) -> dict:
        content = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "actor_kind": self.actor_kind,
            "ip_address": self.ip_address,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "changes": self.changes,
            "reason": self.reason,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
        }
        if self.key_id:  # records from before keys keep the content they were sealed with
            content["key_id"] = self.key_id
        return content

    def compute_hash(self) -> str:
        """HMAC-SHA-256 under the record's key (plain SHA-256 for a record with no key id).
        Raises sealing.UnknownChainKey when that key is no longer configured."""
        from .sealing import seal

        canonical = json.dumps(
            self.sealed_content(), sort_keys=True, separators=(",", ":"), default=str
        )
        return seal(canonical.encode("utf-8"), self.key_id)


class ChainHead(models.Model):
    """One row: the last sealed record. Appends lock it so the chain never forks.

    `last_at` is the last record's time: the next is never dated before it, whatever the clock of
    the host that seals it says, so `at` rises with `seq` (the date filters rely on it).
    """

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    last_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit chain at #{self.last_seq}"


class Verification(models.Model):
    """The result of each `audit_verify` run, shown on the dashboard.

    A run that passed keeps the last record it verified (`last_seq`, `last_hash`): the next run
    checks that record is still there with that hash, so truncating the chain and its head, or
    re-sealing it from some point on, cannot pass unnoticed.
    """

    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    records_checked = models.BigIntegerField()
    first_broken_seq = models.BigIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    last_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at"]
        # Auditors run the verification from the audit pages: reading, not changing, the trail.
        permissions = [("run_verification", "Can run the audit chain verification now")]

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'BROKEN'} at {self.at:%Y-%m-%d %H:%M}"
