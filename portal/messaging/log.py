"""The message log across every mailbox: the message list's filters, and the auditors' extra ones.

The same form filters the page and its CSV export (portal.messaging.exports), so an export is always
exactly what the page showed, without paging.
"""

from __future__ import annotations

from django import forms
from django.db.models import Q

from portal.accounts import reach
from portal.lib.pagination import (
    KeysetPage,
    decode_cursor,
    encode_cursor,
    id_walk_page,
    keyset_page,
    walked_values,
)
from portal.mailboxes.models import Environment, Mailbox

from .forms import MessageFilterForm


def _mailbox_id_field(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=False, max_length=100)


class MessageLogFilterForm(MessageFilterForm):
    """Adds environment, sender and recipient to the message list's filters.

    Each maps onto an index of Message (see its Meta); sender and recipient are exact MESH mailbox ids.
    """

    environment = forms.ChoiceField(
        required=False, choices=[("", "Any environment"), *Environment.choices]
    )
    sender = _mailbox_id_field("Sender", "An exact MESH mailbox id, for example X26ABC2.")
    recipient = _mailbox_id_field("Recipient", "An exact MESH mailbox id, for example X26ABC1.")

    field_order = [
        "mailbox",
        "environment",
        "direction",
        "status",
        "workflow",
        "sender",
        "recipient",
        "date_from",
        "date_to",
        "q",
    ]

    def clean_sender(self) -> str:
        return self.cleaned_data["sender"].strip().upper()

    def clean_recipient(self) -> str:
        return self.cleaned_data["recipient"].strip().upper()

    def filter(self, queryset):
        queryset = self._filter_but_environment(queryset)
        ids = self._environment_mailboxes()
        return queryset if ids is None else queryset.filter(mailbox_id__in=ids)

    def page(self, rows, *, after=None, before=None, size: int = 25) -> KeysetPage:
        """One keyset page of `rows` filtered (see portal.lib.pagination for the cursors)."""
        if (walk := self.word_walk) is not None:  # a word search alone: its word's entries
            return id_walk_page(walk, rows, after=after, before=before, size=size)
        ids = self._environment_mailboxes()
        if ids is None or getattr(self, "cleaned_data", {}).get("mailbox"):
            # Collected matches (a long id list) are sorted as ids, then their rows looked up.
            lookup = rows if self.matched_ids is not None else None
            return keyset_page(
                self.filter(rows), after=after, before=before, size=size, lookup=lookup
            )
        filtered = self._filter_but_environment(rows)
        return merged_keyset_page(rows, filtered, ids, after=after, before=before, size=size)

    def narrows_to_mailboxes(self) -> bool:
        """Whether the rows are kept to some mailboxes (an environment, a person's reach)."""
        return self._environment_mailboxes() is not None

    def _reach_mailboxes(self) -> list[int] | None:
        # With no environment chosen (word_walk's case), the mailboxes within the person's reach.
        return self._environment_mailboxes()

    def _filter_but_environment(self, queryset):
        queryset = super().filter(queryset)
        if not self.is_bound:
            return queryset
        for name in ("sender", "recipient"):
            if value := self.cleaned_data.get(name):
                queryset = queryset.filter(**{name: value})
        return queryset

    def _environment_mailboxes(self) -> list[int] | None:
        """The ids of the mailboxes the rows may come from: the chosen environment's, within the
        person's reach (`user`); None for every mailbox. One small query, never a join: page().

        Someone whose reach holds every mailbox (in an organisation running NeoMesh for itself,
        every member) gets None too: the list's plain walks, not one walk a mailbox with the other
        filters checked row by row (a workflow no message has: 8.5 s at 10M messages)."""
        if not hasattr(self, "_environment_ids"):
            mailboxes = None
            if self.is_bound:
                self.is_valid()  # valid filters apply even when another one is not
                if environment := self.cleaned_data.get("environment"):
                    mailboxes = Mailbox.objects.filter(environment=environment)
            if self.user is not None and not reach.sees_everything(self.user):
                if mailboxes is not None:
                    mailboxes = mailboxes.within_reach(self.user)
                elif not reach.holds_every_mailbox(self.user):
                    mailboxes = Mailbox.objects.within_reach(self.user)
            self._environment_ids = (
                None if mailboxes is None else list(mailboxes.values_list("pk", flat=True))
            )
        return self._environment_ids

    def applied(self) -> dict[str, str]:
        """The filters in use, as text: recorded with every export of the log."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {
            name: str(getattr(value, "mailbox_id", value))
            for name, value in self.cleaned_data.items()
            if value not in (None, "")
        }


def _edge(after: str | None, before: str | None) -> tuple[Q, tuple[str, str], bool, bool]:
    """The cursor's condition, the order to walk in, and whether it pages back or forward."""
    if cursor := decode_cursor(before):
        at, pk = cursor
        newer = Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk)
        return newer & Q(created_at__gte=at), ("created_at", "id"), True, False
    if cursor := decode_cursor(after):
        at, pk = cursor
        older = Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk)
        return older & Q(created_at__lte=at), ("-created_at", "-id"), False, True
    return Q(), ("-created_at", "-id"), False, False


def merged_keyset_page(rows, filtered, mailbox_ids: list[int], *, after=None, before=None, size=25):
    """A keyset page over several mailboxes: one walk of msg_mailbox_created per mailbox, merged.

    With `mailbox IN (...)` SQLite sorts every message of those mailboxes; walking the created_at
    index instead crawls the whole table when they have few messages (an environment before go-live).
    Each walk here stops after one page, so the cost is mailboxes x page, whatever the table's size.
    The walks carry every filter (`filtered`); the merge only looks the walks' ids up (`rows`), read
    first (a page per mailbox): as subqueries ORed together, PostgreSQL walked the created_at index
    testing each row against them (120,000 rows for one page at 10M messages).
    """
    edge, order, backwards, paged = _edge(after, before)
    if not mailbox_ids:
        return KeysetPage()
    walks = [
        filtered.filter(edge, mailbox_id=mailbox_pk)
        .order_by(*order)
        .values_list("pk", flat=True)[: size + 1]
        for mailbox_pk in mailbox_ids
    ]
    ids = walked_values(walks)
    found = list(rows.filter(pk__in=ids).order_by(*order)[: size + 1])
    more = len(found) > size
    if backwards:
        items = list(reversed(found[:size]))
        return KeysetPage(
            items=items,
            next_cursor=encode_cursor(items[-1]) if items else None,
            prev_cursor=encode_cursor(items[0]) if items and more else None,
        )
    items = found[:size]
    return KeysetPage(
        items=items,
        next_cursor=encode_cursor(items[-1]) if more else None,
        prev_cursor=encode_cursor(items[0]) if paged and items else None,
    )


RELATED_AUDIT_LIMIT = 50


def related_audit_records(user, message) -> list | None:
    """The message's audit records, oldest first, for those who may read the trail; else None."""
    if not user.has_perm("audit.view_auditrecord"):
        return None
    from portal.audit.models import AuditRecord

    newest = AuditRecord.objects.for_object(message).order_by("-seq")[:RELATED_AUDIT_LIMIT]
    return list(reversed(newest))
