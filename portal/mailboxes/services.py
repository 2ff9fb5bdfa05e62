"""Mailbox services: the one place the portal builds a MESH client, and connection health."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import meshcore

from .hosts import base_url_problem
from .models import MIN_POLL_INTERVAL, Environment, Mailbox
from .signals import handshake_succeeded


class MailboxNotReady(Exception):
    """The mailbox cannot transfer yet; the message says why in plain English."""


@contextlib.contextmanager
def mesh_client(mailbox: Mailbox, **overrides) -> Iterator[meshcore.MeshClient]:
    """A MeshClient for this mailbox, with its secrets decrypted only for the client's lifetime.

    The client certificate, its key and the CA bundle go to meshcore as PEM bytes, which builds
    its TLS context from memory: a decrypted key is never written to a file.
    """
    if not mailbox.password or not mailbox.shared_key:
        raise MailboxNotReady(f"{mailbox.mailbox_id} has no password or shared key set.")
    # The form refuses these too; this holds for rows changed any other way (the admin, a shell).
    problem = base_url_problem(mailbox.environment, mailbox.effective_base_url())
    if problem:
        raise MailboxNotReady(f"{mailbox.mailbox_id} is not connected: {problem}")
    cert = None
    certificate = mailbox.active_certificate()
    if certificate is not None and certificate.certificate_pem and certificate.private_key:
        cert = (
            (certificate.certificate_pem + certificate.chain_pem).encode("utf-8"),
            certificate.private_key.encode("utf-8"),
        )
    # TLS is verified everywhere but in the sandbox, whatever the row says.
    verify_tls = mailbox.verify_tls or mailbox.environment != Environment.SANDBOX
    verify: bool | bytes = verify_tls
    if verify_tls and mailbox.ca_bundle.strip():
        verify = mailbox.ca_bundle.encode("utf-8")
    options = {
        "cert": cert,
        "verify": verify,
        "application_name": settings.MESH_APPLICATION_NAME,
        # meshcore sends a message whole when it fits this limit, else in chunks that fit.
        "max_request_bytes": mailbox.max_request_bytes,
        "request_deadline": settings.MESH_REQUEST_DEADLINE_SECONDS,
    }
    options.update(overrides)
    with meshcore.MeshClient(
        mailbox.effective_base_url(),
        mailbox.mailbox_id,
        mailbox.password,
        mailbox.shared_key,
        **options,
    ) as client:
        yield client


def record_error(mailbox: Mailbox | int, error: str) -> None:
    """The mailbox's last error, flagged on the dashboard for a day. Takes a mailbox or its pk."""
    pk = mailbox if isinstance(mailbox, int) else mailbox.pk
    Mailbox.objects.filter(pk=pk).update(last_error=error[:2000], last_error_at=timezone.now())


# What a failed handshake says. Never the server's own words: whatever answered (a sandbox URL
# can point at any service on this machine) must not be readable through "Test connection".
FAILURE_KINDS = (
    (
        meshcore.MeshTLSError,
        "the TLS connection failed (server certificate not trusted, or the "
        "client certificate refused)",
    ),
    (
        meshcore.MeshAuthenticationError,
        "the server refused the credentials (password, shared key, certificate or mailbox id)",
    ),
    (meshcore.MeshRateLimitedError, "the server asked to slow down"),
    (meshcore.MeshTransientError, "the server could not be reached, or had a temporary problem"),
    (meshcore.MeshNotFoundError, "the server has no such mailbox or address"),
    (meshcore.MeshProtocolError, "the server's answer is not MESH's"),
    (meshcore.MeshValidationError, "the server refused the request as invalid"),
)


def handshake_failure_text(exc: Exception, *, mesh_host: bool) -> str:
    """A failed handshake in plain English: its kind and HTTP status, no server text.

    MESH's error event and code are shown only from MESH's own hosts (`mesh_host`): from a sandbox
    URL they would be text of whatever answered.
    """
    if isinstance(exc, MailboxNotReady):
        return str(exc)
    kind = next(
        (text for cls, text in FAILURE_KINDS if isinstance(exc, cls)),
        "the server answered with an error",
    )
    details = []
    if getattr(exc, "status", None) is not None:
        details.append(f"HTTP {exc.status}")
    if mesh_host and (getattr(exc, "event", None) or getattr(exc, "code", None)):
        details.append(f"MESH {exc.event or '?'}/{exc.code or '?'}")
    return kind + (f" ({', '.join(details)})" if details else "")


def mailbox_handshake(*, mailbox: Mailbox) -> tuple[bool, str]:
    """Handshake with MESH and record the result on the mailbox. Returns (ok, human summary)."""
    started = time.monotonic()
    try:
        with mesh_client(mailbox) as client:
            client.handshake()
    except (meshcore.MeshError, MailboxNotReady) as exc:
        reason = handshake_failure_text(exc, mesh_host=mailbox.environment != Environment.SANDBOX)
        with transaction.atomic():
            Mailbox.objects.filter(pk=mailbox.pk).update(
                last_handshake_at=timezone.now(), last_handshake_ok=False
            )
            record_error(mailbox, f"Handshake failed: {reason}")
            _handshake_event(mailbox, reason)
        return False, f"Handshake with {mailbox.mailbox_id} failed: {reason}"
    elapsed_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_handshake_at=timezone.now(), last_handshake_ok=True, last_handshake_ms=elapsed_ms
        )
        _handshake_event(mailbox, "")
        handshake_succeeded.send(sender=Mailbox, mailbox=mailbox, elapsed_ms=elapsed_ms)
    return True, f"Handshake with {mailbox.mailbox_id} succeeded in {elapsed_ms} ms"


def mailbox_poll_request(*, mailbox: Mailbox) -> datetime | None:
    """A person's "Poll now": allowed once MESH's 5 minutes since the last poll (or request) are up
    (any environment of NHS England's; a sandbox mailbox is not limited).

    Returns None when granted (recorded by conditional update, so two clicks at once get one
    poll), or when the next poll is allowed.
    """
    now = timezone.now()
    if mailbox.environment == Environment.SANDBOX:
        # A local mesh-sandbox has no polling rule to keep (and development wants a poll now).
        Mailbox.objects.filter(pk=mailbox.pk).update(poll_requested_at=now)
        return None
    since = now - MIN_POLL_INTERVAL
    granted = (
        Mailbox.objects.filter(pk=mailbox.pk)
        .filter(Q(last_poll_at__isnull=True) | Q(last_poll_at__lte=since))
        .filter(Q(poll_requested_at__isnull=True) | Q(poll_requested_at__lte=since))
        .update(poll_requested_at=now)
    )
    if granted:
        mailbox.poll_requested_at = now
        return None
    mailbox.refresh_from_db(fields=["last_poll_at", "poll_requested_at"])
    return mailbox.next_poll_allowed_at() or now


def _handshake_event(mailbox: Mailbox, error: str) -> None:
    """One event when handshakes start failing, one when they succeed again."""
    from portal.events.services import problem_raise, problem_resolve

    key, data = f"mailbox:{mailbox.pk}:handshake", {"mailbox": mailbox.mailbox_id, "error": error}
    if error:
        problem_raise(
            problem_key=key,
            kind="mailbox.handshake_failing",
            severity="error",
            summary=f"Handshake of {mailbox.mailbox_id} with MESH failed: {error}",
            mailbox_id=mailbox.pk,
            data=data,
        )
    else:
        problem_resolve(
            problem_key=key,
            kind="mailbox.handshake_recovered",
            severity="info",
            summary=f"Handshake of {mailbox.mailbox_id} with MESH succeeds again.",
            mailbox_id=mailbox.pk,
            data=data,
        )
