"""Mailbox services: the one place the portal builds a MESH client, and connection health."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import meshcore

from .models import Mailbox


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
    cert = None
    certificate = mailbox.active_certificate()
    if certificate is not None and certificate.certificate_pem and certificate.private_key:
        cert = (
            (certificate.certificate_pem + certificate.chain_pem).encode("utf-8"),
            certificate.private_key.encode("utf-8"),
        )
    verify: bool | bytes = mailbox.verify_tls
    if mailbox.verify_tls and mailbox.ca_bundle.strip():
        verify = mailbox.ca_bundle.encode("utf-8")
    options = {
        "cert": cert,
        "verify": verify,
        "application_name": settings.MESH_APPLICATION_NAME,
        "chunk_size": settings.MESH_CHUNK_SIZE,
        "request_deadline": settings.MESH_REQUEST_DEADLINE_SECONDS,
    }
    options.update(overrides)
    with meshcore.MeshClient(
        mailbox.effective_base_url(), mailbox.mailbox_id, mailbox.password, mailbox.shared_key,
        **options,
    ) as client:  # fmt: skip
        yield client


def record_error(mailbox: Mailbox | int, error: str) -> None:
    """The mailbox's last error, flagged on the dashboard for a day. Takes a mailbox or its pk."""
    pk = mailbox if isinstance(mailbox, int) else mailbox.pk
    Mailbox.objects.filter(pk=pk).update(last_error=error[:2000], last_error_at=timezone.now())


def mailbox_handshake(*, mailbox: Mailbox) -> tuple[bool, str]:
    """Handshake with MESH and record the result on the mailbox. Returns (ok, human summary)."""
    started = time.monotonic()
    try:
        with mesh_client(mailbox) as client:
            client.handshake()
    except (meshcore.MeshError, MailboxNotReady) as exc:
        with transaction.atomic():
            Mailbox.objects.filter(pk=mailbox.pk).update(
                last_handshake_at=timezone.now(), last_handshake_ok=False
            )
            record_error(mailbox, f"Handshake failed: {exc}")
            _handshake_event(mailbox, str(exc))
        return False, f"Handshake with {mailbox.mailbox_id} failed: {exc}"
    elapsed_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_handshake_at=timezone.now(), last_handshake_ok=True, last_handshake_ms=elapsed_ms
        )
        _handshake_event(mailbox, "")
    return True, f"Handshake with {mailbox.mailbox_id} succeeded in {elapsed_ms} ms"


def _handshake_event(mailbox: Mailbox, error: str) -> None:
    """One event when handshakes start failing, one when they succeed again."""
    from portal.events.services import problem_raise, problem_resolve

    key, data = f"mailbox:{mailbox.pk}:handshake", {"mailbox": mailbox.mailbox_id, "error": error}
    if error:
        problem_raise(
            problem_key=key, kind="mailbox.handshake_failing", severity="error",
            summary=f"Handshake of {mailbox.mailbox_id} with MESH failed: {error}",
            mailbox_id=mailbox.pk, data=data,
        )  # fmt: skip
    else:
        problem_resolve(
            problem_key=key, kind="mailbox.handshake_recovered", severity="info",
            summary=f"Handshake of {mailbox.mailbox_id} with MESH succeeds again.",
            mailbox_id=mailbox.pk, data=data,
        )  # fmt: skip
