"""A time limit on a page's queries: a search no index answers quickly is stopped, not left running.

Most list pages read one index range and stop after a page, whatever the table's size. A message
search for several words that each occur in millions of messages but rarely together cannot: the
database checks every message holding one of them (75 s for one page at ten million messages).
Under `time_limit(seconds)` such a query is cancelled by the database itself (PostgreSQL's
`statement_timeout`; SQLite's progress handler) and `TooSlow` raised, so the page can say so and
suggest a narrower search instead of holding a worker and the database for a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import OperationalError, connections, transaction

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement stopped by statement_timeout
SQLITE_STEPS = 10_000  # SQLite asks whether to go on every this many virtual machine steps


class TooSlow(Exception):
    """The queries under `time_limit` ran past it and were stopped."""

    def __init__(self, seconds: float):
        super().__init__(f"Stopped after {seconds:g} seconds.")
        self.seconds = seconds

    @property
    def seconds_text(self) -> str:
        """The seconds as a person reads them: 5, 0.05."""
        return f"{self.seconds:g}"


# The innermost time_limit's (deadline, seconds), for loops of quick queries (check_time).
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("query_deadline", default=None)


@contextmanager
def time_limit(seconds: float | None, using: str = "default") -> Iterator[None]:
    """Stop any query inside the block that runs past `seconds` (None or 0: no limit).

    A block that runs many quick queries calls `check_time` between them: the database stops a
    query that runs past the limit, not a loop of queries each within it.
    """
    if not seconds:
        yield
        return
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        connection = connections[using]
        if connection.vendor == "postgresql":
            with _postgres_limit(connection, seconds, using):
                yield
        elif connection.vendor == "sqlite":
            with _sqlite_limit(connection, seconds):
                yield
        else:  # pragma: no cover - NeoMesh runs on SQLite or PostgreSQL
            yield
    finally:
        _deadline.reset(token)


def check_time() -> None:
    """Raise TooSlow if the time_limit around this call has run out (nothing outside one)."""
    if (limit := _deadline.get()) is not None and time.monotonic() > limit[0]:
        raise TooSlow(limit[1])


@contextmanager
def postgres_settings(using: str = "default", **values) -> Iterator[None]:
    """PostgreSQL's planner or runtime `values` (`enable_hashjoin="off"`) for the queries inside the
    block only; nothing on another engine. SET LOCAL lasts to the end of the transaction (a
    savepoint's release does not end it), so each is set back by hand when the block ends well; a
    block that raises rolls them back with its savepoint."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            for name, value in values.items():
                cursor.execute(f"SET LOCAL {name} = %s", [value])
        yield
        with connection.cursor() as cursor:
            for name in values:
                cursor.execute(f"SET LOCAL {name} TO DEFAULT")


@contextmanager
def _postgres_limit(connection, seconds: float, using: str) -> Iterator[None]:
    with postgres_settings(using, statement_timeout=max(1, int(seconds * 1000))):
        try:
            yield
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == QUERY_CANCELED:
                raise TooSlow(seconds) from None
            raise


@contextmanager
def _sqlite_limit(connection, seconds: float) -> Iterator[None]:
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_STEPS)
    try:
        yield
    except OperationalError as error:
        if "interrupted" in str(error):
            raise TooSlow(seconds) from None
        raise
    finally:
        raw.set_progress_handler(None, 0)
