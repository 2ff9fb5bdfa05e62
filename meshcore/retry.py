"""When to try an HTTP request again, and how long to wait first.

Retried: connection failures and timeouts, 429 (after Retry-After when given), 502, 503, 504.
Never retried: any other 4xx, other 5xx, TLS failures.

The first ``POST /outbox`` creates a message and MESH has no idempotency key, so it is retried
only when MESH certainly did not act on it: the connection was never established, or MESH said
429. Any other failure after the request may have been sent (a read timeout, a dropped
connection, a 5xx) raises ``MeshSendOutcomeUnknown`` instead, for the caller to reconcile.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.client import RemoteDisconnected

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .errors import (
    MeshError,
    MeshRateLimitedError,
    MeshSendOutcomeUnknown,
    MeshTLSError,
    MeshTransientError,
)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_factor: float = 0.5
    max_backoff: float = 30.0
    # A Retry-After longer than this is not waited for: the error goes to the caller, with
    # retry_after set, so a worker can reschedule rather than hold a thread asleep.
    max_retry_after: float = 120.0

    def delay(
        self, attempt: int, error: MeshError, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up and raise ``error``."""
        if attempt >= self.max_retries or not error.retryable:
            return None
        if error.status is not None and error.status not in RETRY_STATUSES:
            return None  # e.g. a 500: the server failed on this request; repeating will not help
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        backoff = min(self.max_backoff, self.backoff_factor * (2**attempt))
        # "Equal jitter": at least half the backoff, so retries really back off, plus a random
        # share, so many workers failing together do not come back together.
        return backoff / 2 + (rng or random).uniform(0, backoff / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_MTLS_HINT = (
    "; over HTTPS a server that closes the connection without answering may also be rejecting "
    "a missing or untrusted client certificate (mutual TLS)"
)


def error_from_exception(
    exc: BaseException, *, creates_message: bool, https: bool = False
) -> MeshError:
    """Turn a requests/urllib3 exception into a MeshError, retryable only when that is safe."""
    if _is_tls_failure(exc):
        return MeshTLSError(f"TLS failure: {_tls_reason(exc)}")
    never_sent = _never_sent(exc)
    hint = _MTLS_HINT if https and _closed_without_answer(exc) else ""
    if creates_message and not never_sent:
        return MeshSendOutcomeUnknown(
            f"the send may or may not have reached MESH ({_short(exc)}){hint}; check tracking or "
            "the local id before sending again"
        )
    return MeshTransientError(f"connection failed: {_short(exc)}{hint}")


def mark_send_outcome_unknown(error: MeshError) -> MeshError:
    """A 5xx answer to the first POST: MESH may have created the message anyway."""
    if isinstance(error, MeshTransientError) and not isinstance(error, MeshRateLimitedError):
        return MeshSendOutcomeUnknown(
            f"{error.description or 'server error'}; the send may have been created: check tracking "
            "or the local id before sending again",
            status=error.status,
            event=error.event,
            code=error.code,
            message_id=error.message_id,
        )
    return error


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its arguments and causes: urllib3 errors hide inside requests' wrappers."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is known for known in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return seen


def _never_sent(exc: BaseException) -> bool:
    """True only when no byte of the request can have reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return any(
        isinstance(
            item,
            NewConnectionError | ConnectTimeoutError | NameResolutionError | ConnectionRefusedError,
        )
        for item in _chain(exc)
    )


def _closed_without_answer(exc: BaseException) -> bool:
    return any(
        isinstance(item, RemoteDisconnected | ConnectionResetError | BrokenPipeError)
        for item in _chain(exc)
    )


def _is_tls_failure(exc: BaseException) -> bool:
    return isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(item, ssl.SSLError) for item in _chain(exc)
    )


def _tls_reason(exc: BaseException) -> str:
    for item in _chain(exc):
        if isinstance(item, ssl.SSLError):
            reason = getattr(item, "reason", None)
            text = getattr(item, "verify_message", None) or item.strerror or str(item)
            return f"{reason}: {text}" if reason and reason not in str(text) else str(text)
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"
