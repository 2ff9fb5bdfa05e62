"""Keyset pagination on (-created_at, -id): no COUNT, no OFFSET, fast on any page of a big table.

A page is fetched with one row more than it shows, to know whether another page follows. Cursors
are the (created_at, id) of the edge rows, so the links stay right while new rows arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connections
from django.db.models import Q, QuerySet

CURSOR_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@dataclass
class KeysetPage:
    items: list = field(default_factory=list)
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.prev_cursor)


COUNT_UP_TO = 1000


@dataclass
class BoundedCount:
    """How many rows match, counted no further than `limit` (a big table is never counted whole)."""

    value: int
    limit: int = COUNT_UP_TO

    @property
    def more(self) -> bool:
        return self.value > self.limit

    @property
    def limit_text(self) -> str:
        return f"{self.limit:,}"


def count_up_to(queryset: QuerySet, limit: int = COUNT_UP_TO, *, ordered=False) -> BoundedCount:
    """COUNT over at most limit + 1 rows: as quick as reading one page more, at any table size.

    Unordered, the database reads the filters' index. `ordered` keeps the list's order instead,
    for a filter no index serves (a search checked row by row): the count then walks from the
    newest rows, as the page does, and stops at the limit.
    """
    rows = queryset if ordered else queryset.order_by()
    return BoundedCount(rows[: limit + 1].count(), limit)


def walked_values(walks: list[QuerySet]) -> list:
    """The values of several walks (each a one-column queryset, ordered and sliced to a page), for
    a page merged from them: in one query where the database combines sliced queries
    (PostgreSQL: UNION ALL, one round trip instead of one a walk), else one query a walk (SQLite,
    where each is a quick index seek in the same process)."""
    if len(walks) > 1 and connections[walks[0].db].features.supports_slicing_ordering_in_compound:
        return list(walks[0].union(*walks[1:], all=True))
    return [value for walk in walks for value in walk]


def encode_cursor(row) -> str:
    return f"{row.created_at.astimezone(UTC).strftime(CURSOR_FORMAT)}_{row.pk}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """None for a missing or malformed cursor: a bad link shows the first page, never an error."""
    if not value:
        return None
    try:
        stamp, pk = value.split("_", 1)
        return datetime.strptime(stamp, CURSOR_FORMAT).replace(tzinfo=UTC), int(pk)
    except ValueError:
        return None


def keyset_page(
    queryset: QuerySet,
    *,
    after: str | None = None,
    before: str | None = None,
    size: int = 25,
    lookup: QuerySet | None = None,
):
    """One page of `queryset`, newest first, after (older than) or before (newer than) a cursor.

    With `lookup`, the page's ids are read from `queryset` first and its rows then looked up in
    `lookup` by id: for a filter by a long list of ids, which the database sorts rather than walks,
    it then sorts ids, not whole rows (66,673 messages: 40 ms against 277).
    """

    def read(rows: QuerySet, order: tuple[str, ...]) -> list:
        if lookup is None:
            return list(rows.order_by(*order)[: size + 1])
        ids = list(rows.order_by(*order).values_list("pk", flat=True)[: size + 1])
        return list(lookup.filter(pk__in=ids).order_by(*order))

    if cursor := decode_cursor(before):
        at, pk = cursor
        # `created_at >= at` alone gives the planner a plain index range; the OR breaks the tie.
        newer = queryset.filter(
            Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk), created_at__gte=at
        )
        rows = read(newer, ("created_at", "id"))
        more_newer = len(rows) > size
        items = list(reversed(rows[:size]))
        return KeysetPage(
            items=items,
            next_cursor=encode_cursor(items[-1]) if items else None,
            prev_cursor=encode_cursor(items[0]) if items and more_newer else None,
        )
    cursor = decode_cursor(after)
    if cursor:
        at, pk = cursor
        queryset = queryset.filter(
            Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk), created_at__lte=at
        )
    rows = read(queryset, ("-created_at", "-id"))
    items = rows[:size]
    return KeysetPage(
        items=items,
        next_cursor=encode_cursor(items[-1]) if len(rows) > size else None,
        prev_cursor=encode_cursor(items[0]) if cursor and items else None,
    )


# A walk of matching ids along another index than the list's: up to `most` of them past a cursor
# ((created_at, id), or None: from the start), newest first when asked (True) else oldest first.
IdWalk = Callable[[tuple[datetime, int] | None, bool, int], list[int]]


def id_walk_page(
    walk: IdWalk,
    lookup: QuerySet,
    *,
    after: str | None = None,
    before: str | None = None,
    size: int = 25,
) -> KeysetPage:
    """A keyset page whose ids `walk` finds along another index (such as a word's entries in the
    list's order: portal.messaging.search.WordWalk), its rows then looked up in `lookup` by id.
    The same page and cursors as keyset_page."""
    backwards = (cursor := decode_cursor(before)) is not None
    cursor = cursor or decode_cursor(after)
    ids = walk(cursor, not backwards, size + 1)
    items = list(lookup.filter(pk__in=ids[:size]).order_by("-created_at", "-id"))
    more = len(ids) > size  # another page beyond this one, in the walk's direction
    newer, older = (more, True) if backwards else (cursor is not None, more)
    return KeysetPage(
        items=items,
        next_cursor=encode_cursor(items[-1]) if items and older else None,
        prev_cursor=encode_cursor(items[0]) if items and newer else None,
    )


def id_walk_count(walk: IdWalk, limit: int = COUNT_UP_TO) -> BoundedCount:
    """The ids `walk` finds, counted newest first up to `limit` + 1."""
    return BoundedCount(len(walk(None, True, limit + 1)), limit)
