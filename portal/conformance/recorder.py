"""Keeping the HTTP exchanges of each scenario as evidence, from meshcore's on_exchange hook.

meshcore already hands over an Exchange with the Authorization header redacted and no bodies.
The recorder checks the redaction again (defence in depth: the evidence pack leaves the building),
labels each exchange with the mailbox whose client made it, and keeps a sample when a scenario makes
thousands of requests (the high-volume case): the first exchanges in full, every failure and inbox
listing, and the last few, with the total count, so the evidence stays readable and small.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from meshcore import Exchange

# Exchanges kept in full at the start of a scenario, and at its end.
HEAD = 40
TAIL = 10
# Beyond HEAD, notable exchanges (failures, inbox listings) are kept up to this many.
NOTABLE_LIMIT = 200
_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}
_REDACTED_TOKEN = re.compile(r"^[A-Za-z]+ [A-Z0-9_-]+:<redacted>$")


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    """The headers with every credential-bearing value reduced to its scheme and mailbox id."""
    safe = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and not _REDACTED_TOKEN.match(value or ""):
            safe[name] = "<redacted>"
        else:
            safe[name] = value
    return safe


def _notable(entry: dict[str, Any]) -> bool:
    status = entry.get("status")
    listing = entry["method"] == "GET" and entry["path"].endswith("/inbox")
    return status is None or status >= 300 or listing


class Recorder:
    """Collects the exchanges of the scenario running now; `take()` hands them over and resets."""

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self.paused = False

    def callback(self, mailbox_id: str) -> Callable[[Exchange], None]:
        def record(exchange: Exchange) -> None:
            if not self.paused:
                self.add(mailbox_id, exchange.as_dict())

        return record

    def add(self, mailbox_id: str, entry: dict[str, Any]) -> None:
        entry = dict(entry)
        entry["mailbox"] = mailbox_id
        entry["seq"] = len(self._entries) + 1
        entry["request_headers"] = _redacted(entry.get("request_headers") or {})
        entry["response_headers"] = _redacted(entry.get("response_headers") or {})
        self._entries.append(entry)

    def add_manual(
        self,
        mailbox_id: str,
        *,
        method: str,
        path: str,
        status: int | None,
        elapsed_ms: float,
        error: str = "",
        note: str = "",
        request_headers: dict | None = None,
    ) -> None:
        """A request made outside meshcore (the sandbox's admin API), recorded the same way."""
        self.add(
            mailbox_id,
            {
                "method": method,
                "path": path,
                "query": "",
                "status": status,
                "error": error,
                "request_headers": request_headers or {},
                "response_headers": {},
                "elapsed_ms": elapsed_ms,
                "note": note,
            },
        )

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far in this scenario (the scenario's own checks read these)."""
        return self._entries

    def take(self) -> tuple[list[dict[str, Any]], int]:
        """(the exchanges to keep, how many there were), and start afresh."""
        entries, self._entries = self._entries, []
        return sample(entries), len(entries)


def sample(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(entries) <= HEAD + TAIL:
        return entries
    middle = entries[HEAD:-TAIL]
    notable = [entry for entry in middle if _notable(entry)][:NOTABLE_LIMIT]
    return entries[:HEAD] + notable + entries[-TAIL:]


def header(headers: dict[str, str], name: str) -> str | None:
    """A header's value whatever its case."""
    lower = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lower), None)
