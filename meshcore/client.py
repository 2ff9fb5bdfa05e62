"""MeshClient: one mailbox, every MESH API v2 call, streaming in both directions.

Every HTTP request goes through ``MeshClient._request``, the single seam that builds a fresh
NHSMESH token for each attempt, applies the retry policy (see ``meshcore.retry``) and maps
failures to the ``meshcore.errors`` hierarchy.

Retry and duplicate-send policy, in short: GET, PUT and chunk uploads 2..n are retried with
exponential backoff and jitter on connection failures, timeouts, 429 (honouring Retry-After),
502, 503 and 504. The first ``POST /outbox`` is retried only when MESH certainly did not act on
it (connection never established, or 429); otherwise ``MeshSendOutcomeUnknown`` is raised so the
caller can reconcile by tracking or local id instead of risking a duplicate message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin

import requests
from requests.adapters import HTTPAdapter

from . import headers as mex
from . import validation
from .auth import TokenFactory
from .decoding import read_body
from .errors import (
    MeshError,
    MeshProtocolError,
    MeshValidationError,
    error_class_for_status,
    parse_error_body,
)
from .exchanges import (
    Exchange,
    ExchangeCallback,
    kept_response_headers,
    safe_request_headers,
    split_url,
)
from .gzipper import DEFAULT_LEVEL, default_workers
from .limits import (
    DEFAULT_MAX_RESPONSE_BODY,
    DEFAULT_MIN_TRANSFER_RATE,
    DEFAULT_REQUEST_DEADLINE,
    Deadline,
    DownloadLimits,
)
from .models import (
    HandshakeResult,
    MailboxRef,
    TrackingStatus,
    mailboxes_from_json,
    tracking_from_json,
)
from .receiving import _NETWORK_ERRORS, ReceiveMixin
from .retry import RetryPolicy, error_from_exception, mark_send_outcome_unknown, parse_retry_after
from .sending import SendMixin
from .tls import PinnedTLSAdapter, build_ssl_context

log = logging.getLogger("meshcore")

DEFAULT_TIMEOUT = (10.0, 300.0)
DEFAULT_COMPRESS_LEVEL = DEFAULT_LEVEL
MAX_CLOCK_SKEW_SECONDS = 2 * 3600  # the live service rejects tokens further out than this
_ERROR_BODY_LIMIT = 64 * 1024


class MeshClient(SendMixin, ReceiveMixin):
    """A MESH API v2 client for one mailbox. Use it as a context manager, or call close()."""

    def __init__(
        self,
        base_url: str,
        mailbox_id: str,
        password: str,
        shared_key: str | bytes,
        *,
        cert: tuple[str, str] | tuple[bytes, bytes] | None = None,
        verify: bool | str | bytes = True,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        chunk_size: int | None = None,
        max_request_bytes: int = validation.DEFAULT_MAX_REQUEST_BYTES,
        application_name: str | None = None,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
        compress_workers: int | None = None,
        backoff_factor: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        proxies: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_exchange: ExchangeCallback | None = None,
        download_limits: DownloadLimits | None = None,
        max_response_body: int = DEFAULT_MAX_RESPONSE_BODY,
        request_deadline: float | None = DEFAULT_REQUEST_DEADLINE,
        min_transfer_rate: float | None = DEFAULT_MIN_TRANSFER_RATE,
    ) -> None:
        self.base_url = validation.base_url(base_url)
        self.mailbox_id = validation.mailbox_id(mailbox_id)
        password_text = validation.secret(password, "password").decode("utf-8")
        key = validation.secret(shared_key, "shared_key")
        # None: one request whenever the message fits max_request_bytes (meshcore.sizing).
        self.chunk_size = None if chunk_size is None else validation.chunk_size(chunk_size)
        self.max_request_bytes = validation.max_request_bytes(max_request_bytes)
        if isinstance(compress_level, bool) or compress_level not in range(10):
            raise MeshValidationError(f"compress_level must be 0-9, got {compress_level!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise MeshValidationError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.compress_level = compress_level
        if download_limits is not None and not isinstance(download_limits, DownloadLimits):
            raise MeshValidationError("download_limits must be a meshcore.DownloadLimits")
        self.download_limits = download_limits or DownloadLimits()
        self.max_response_body = validation.positive_int(max_response_body, "max_response_body")
        self.request_deadline = validation.optional_seconds(request_deadline, "request_deadline")
        self.min_transfer_rate = validation.optional_seconds(min_transfer_rate, "min_transfer_rate")
        self.compress_workers = _workers(compress_workers)
        self.timeout = timeout
        self.retry_policy = RetryPolicy(max_retries, backoff_factor, max_backoff, max_retry_after)
        self._application_name = application_name
        self._sleep = sleep
        # Called with an Exchange (no bodies, no secrets) after every HTTP attempt; see exchanges.py.
        self._on_exchange = on_exchange
        self._tokens = TokenFactory(self.mailbox_id, password_text, key)
        self._session = self._build_session(verify, cert, proxies, application_name)

    def _build_session(
        self,
        verify: bool | str,
        cert: Any,
        proxies: dict[str, str] | None,
        application_name: str | None,
    ) -> requests.Session:
        session = requests.Session()
        # No environment influence: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, proxies and .netrc are
        # ignored; TLS comes from `context` alone and proxies only from the argument.
        session.trust_env = False
        session.verify = verify is not False
        session.proxies = dict(proxies or {})
        # Bad certificate or CA files fail here, before any HTTP. A plain-http client (the local
        # sandbox) with default settings skips it: loading the CA bundle costs ~30 ms.
        if self.base_url.startswith("https:") or cert is not None or isinstance(verify, str):
            session.mount("https://", PinnedTLSAdapter(build_ssl_context(verify, cert)))
        session.mount("http://", HTTPAdapter(max_retries=0))
        session.headers.clear()
        session.headers.update(
            {
                "User-Agent": mex.user_agent(application_name),
                "Accept": mex.ACCEPT_V2,
                "Accept-Encoding": "gzip",
            }
        )
        return session

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MeshClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MeshClient({self.base_url!r}, {self.mailbox_id!r})"

    # -- the HTTP seam ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        body: Callable[[], Any] | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        creates_message: bool = False,
        authenticate: bool = True,
    ) -> requests.Response:
        """Send one logical request: a fresh token per attempt, retries, errors mapped."""
        attempt = 0
        while True:
            try:
                return self._attempt(
                    method, url, headers, params, body, stream, ok, creates_message, authenticate
                )
            except MeshError as error:
                delay = self.retry_policy.delay(attempt, error)
                if delay is None:
                    raise
                log.info(
                    "MESH %s %s failed (%s); retry %d in %.1fs",
                    method,
                    _path(url),
                    error,
                    attempt + 1,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

    def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        params: dict[str, Any] | None,
        body: Callable[[], Any] | None,
        stream: bool,
        ok: tuple[int, ...],
        creates_message: bool,
        authenticate: bool,
    ) -> requests.Response:
        attempt_headers = dict(headers or {})
        if authenticate:
            attempt_headers["Authorization"] = self._tokens()
        data = body() if body else None
        started = time.monotonic()
        try:
            # Always stream, so error bodies are read only up to a limit and downloads not at all.
            response = self._session.request(
                method,
                url,
                headers=attempt_headers,
                params=params,
                data=data,
                stream=True,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            error = error_from_exception(
                exc, creates_message=creates_message, https=url.startswith("https:")
            )
            self._report(method, url, params, attempt_headers, None, error, started)
            raise error from exc
        finally:
            if hasattr(data, "close"):
                data.close()
        log.debug("MESH %s %s -> %s", method, _path(url), response.status_code)
        if response.status_code in ok:
            if not stream:
                try:
                    # Read now (bounded in size and time), so the connection goes back to the pool.
                    # The deadline runs from the answer's headers: sending a large chunk on a
                    # slow link may take longer than the deadline, and is bounded by `timeout`.
                    with self.deadline().watch(response) as deadline:
                        response._content = read_body(  # noqa: SLF001 - requests' own cache
                            response, self.max_response_body, deadline
                        )
                    response._content_consumed = True  # noqa: SLF001
                except MeshError as error:
                    response.close()
                    self._report(method, url, params, attempt_headers, response, error, started)
                    raise (mark_send_outcome_unknown(error) if creates_message else error) from None
                except _NETWORK_ERRORS as exc:
                    # The answer broke off: for the first POST, MESH may have created the message.
                    error = error_from_exception(
                        exc, creates_message=creates_message, https=url.startswith("https:")
                    )
                    self._report(method, url, params, attempt_headers, response, error, started)
                    raise error from exc
            self._report(method, url, params, attempt_headers, response, None, started)
            return response
        error = _error_from_response(response, self.deadline())
        self._report(method, url, params, attempt_headers, response, error, started)
        raise mark_send_outcome_unknown(error) if creates_message else error

    def deadline(self, started: float | None = None) -> Deadline:
        """The time allowed for one answer, from ``started`` (a monotonic time) or now."""
        return Deadline(self.request_deadline, self.min_transfer_rate, started)

    def _report(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        headers: dict[str, str],
        response: requests.Response | None,
        error: MeshError | None,
        started: float,
    ) -> None:
        """Hand the on_exchange callback one Exchange; its failures never break a transfer."""
        if self._on_exchange is None:
            return
        try:
            sent = response.request.headers if response is not None and response.request else None
            path, query = split_url(url, params)
            exchange = Exchange(
                method=method,
                path=path,
                query=query,
                status=response.status_code if response is not None else None,
                error=str(error) if error is not None else "",
                request_headers=safe_request_headers(
                    sent if sent is not None else {**self._session.headers, **headers}
                ),
                response_headers=(
                    kept_response_headers(response.headers) if response is not None else {}
                ),
                elapsed_ms=round((time.monotonic() - started) * 1000, 1),
            )
            self._on_exchange(exchange)
        except Exception:  # noqa: BLE001 - evidence keeping must never stop a transfer
            log.warning("on_exchange callback failed for %s %s", method, _path(url), exc_info=True)

    def _mailbox_url(self, *parts: str) -> str:
        path = "/".join(quote(part, safe="") for part in (self.mailbox_id, *parts))
        return f"{self.base_url}/messageexchange/{path}"

    def _same_server(self, link: str) -> str:
        """Resolve a server-relative link; never follow one to another host with our token."""
        url = urljoin(self.base_url + "/", link)
        if not url.startswith(self.base_url + "/"):
            raise MeshProtocolError(f"MESH sent a link to another server: {link!r}")
        return url

    def _json(self, response: requests.Response) -> Any:
        """Parse JSON whatever the Content-Type says (the sandbox is inconsistent)."""
        text = response.content.strip()
        if not text:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise MeshProtocolError(
                f"expected JSON from {_path(response.url)}, got {text[:80]!r}",
                status=response.status_code,
            ) from error

    # -- mailbox ---------------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        """``GET /messageexchange/_ping``: is the service up? (No authentication needed.)"""
        response = self._request(
            "GET", f"{self.base_url}/messageexchange/_ping", authenticate=False
        )
        return self._json(response) or {}

    def handshake(self) -> HandshakeResult:
        """Validate the mailbox (``POST /messageexchange/{mailbox}``); do it at least daily."""
        headers = mex.handshake_headers(self._application_name)
        response = self._request("POST", self._mailbox_url(), headers=headers)
        server_time = _server_time(response)
        skew = (datetime.now(UTC) - server_time).total_seconds() if server_time else None
        if skew is not None and abs(skew) > MAX_CLOCK_SKEW_SECONDS:
            log.warning(
                "local clock is %.0f s away from MESH's: tokens will be rejected live", skew
            )
        return HandshakeResult(self.mailbox_id, server_time, skew)

    def inbox_count(self) -> int:
        """Messages waiting (``GET /count``, deprecated by MESH but handy for dashboards)."""
        document = self._json(self._request("GET", self._mailbox_url("count"))) or {}
        return int(document.get("count", 0))

    def iter_inbox(self, workflow_filter: str | None = None, page_size: int = 500) -> Iterator[str]:
        """Every message id ready to download, oldest first, across all pages (``links.next``)."""
        params: dict[str, Any] | None = {"max_results": validation.page_size(page_size)}
        if validation.workflow_filter(workflow_filter):
            params["workflow_filter"] = workflow_filter
        url: str | None = self._mailbox_url("inbox")
        seen_links = set()
        while url:
            document = self._json(self._request("GET", url, params=params)) or {}
            yield from document.get("messages") or []
            next_link = (document.get("links") or {}).get("next")
            if not next_link or next_link in seen_links:
                return
            seen_links.add(next_link)
            # links are server-relative paths that already carry the query.
            url, params = self._same_server(next_link), None

    # -- tracking and directory ------------------------------------------------------------

    def track(self, message_id: str) -> TrackingStatus:
        """The status of a message this mailbox sent (``GET /outbox/tracking?messageID=``)."""
        message_id = validation.message_id(message_id)
        response = self._request(
            "GET", self._mailbox_url("outbox", "tracking"), params={"messageID": message_id}
        )
        return tracking_from_json(message_id, self._json(response) or {})

    def lookup(self, ods_code: str, workflow_id: str) -> list[MailboxRef]:
        """Mailboxes of organisation ``ods_code`` that receive ``workflow_id``."""
        ods = quote(validation.ods_code(ods_code), safe="")
        workflow = quote(validation.workflow_id(workflow_id), safe="")
        url = f"{self.base_url}/messageexchange/endpointlookup/{ods}/{workflow}"
        return mailboxes_from_json(self._json(self._request("GET", url)) or {})

    def track_by_local_id(self, local_id: str) -> TrackingStatus:
        """Find a sent message by its local id (``GET /outbox/tracking/{local_id}``).

        MESH marks this endpoint deprecated, but it is how a sender reconciles a first POST whose
        outcome is unknown. Raises MeshNotFoundError when no message has this local id, and
        MeshError with status 300 when several do. The answer is always the v1 schema.
        """
        local_id = validation.header_value("mex-LocalID", local_id)
        response = self._request("GET", self._mailbox_url("outbox", "tracking", local_id))
        return tracking_from_json("", self._json(response) or {})

    def workflow_search(self, workflow_id: str) -> list[MailboxRef]:
        """Every mailbox registered to receive ``workflow_id``."""
        workflow = quote(validation.workflow_id(workflow_id), safe="")
        url = f"{self.base_url}/messageexchange/workflowsearch/{workflow}"
        return mailboxes_from_json(self._json(self._request("GET", url)) or {})


def _error_from_response(response: requests.Response, deadline: Deadline) -> MeshError:
    """Map an unexpected status to the error hierarchy, reading at most a small error body."""
    try:
        with deadline.watch(response):
            body = read_body(response, _ERROR_BODY_LIMIT, deadline) if response.raw else b""
    except Exception:  # a broken, endless or slow error body must not hide the status code
        body = b""
    finally:
        response.close()
    parsed = parse_error_body(body)
    status = response.status_code
    retry_after = (
        parse_retry_after(response.headers.get("Retry-After")) if status in {429, 503} else None
    )
    description = parsed.description or response.reason or f"HTTP {status}"
    if status == 300:
        description = "several messages match (e.g. a local id used more than once)"
    if status == 403 and not parsed.description:
        description = (
            "authentication failed or not permitted (check mailbox id, password and shared key)"
        )
    return error_class_for_status(status)(
        description,
        status=status,
        event=parsed.event,
        code=parsed.code,
        message_id=parsed.message_id,
        retry_after=retry_after,
    )


def _server_time(response: requests.Response) -> datetime | None:
    try:
        return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _workers(value: int | None) -> int:
    if value is None:
        return default_workers()
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise MeshValidationError(f"compress_workers must be 1-32, got {value!r}")
    return value


def _path(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
