"""Consumers of events: each reads every event once, in commit order, from its own cursor.

A consumer registers once at start-up (from its app's `AppConfig.ready`):

    consumers.register("alerts", handle_event, kinds={"message.ndr", ...})

`events_dispatch` (scheduled every minute) then hands each new event of those kinds to the handler,
inside a savepoint of the transaction that moves the consumer's cursor past it: whatever the handler
writes to the database commits together with the cursor, so an event is consumed exactly once. A
handler should only write rows (an outbox of work to do); slow work (sending mail, calling a
webhook) belongs to tasks it enqueues on commit.

A handler that raises is retried with backoff from the same event; after
`EVENTS_HANDLER_MAX_ATTEMPTS` failures in a row the event is recorded in the cursor's `skipped` list
and the consumer moves on, so one bad event never stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .models import Event


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Callable[[Event], object]
    kinds: frozenset[str] | None = None
    # A new consumer starts at the newest event: it is not handed the whole history.
    from_start: bool = False

    def wants(self, event: Event) -> bool:
        return self.kinds is None or event.kind in self.kinds


_registry: dict[str, Consumer] = {}


def register(
    name: str,
    handler: Callable[[Event], object],
    *,
    kinds: Iterable[str] | None = None,
    from_start: bool = False,
) -> Consumer:
    """Register (or replace) a consumer by name; `kinds=None` means every kind."""
    from .kinds import KINDS

    wanted = frozenset(kinds) if kinds is not None else None
    unknown = sorted((wanted or frozenset()) - set(KINDS))
    if unknown:
        raise ValueError(f"Unknown event kinds: {', '.join(unknown)} (see portal/events/kinds.py)")
    consumer = Consumer(name, handler, wanted, from_start)
    _registry[name] = consumer
    return consumer


def unregister(name: str) -> None:
    _registry.pop(name, None)


def registered() -> list[Consumer]:
    return list(_registry.values())


def get(name: str) -> Consumer | None:
    return _registry.get(name)
