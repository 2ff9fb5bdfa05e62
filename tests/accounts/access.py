"""Helpers for the view tests: the persona access check, and builders for rows the views show."""

from __future__ import annotations

import io
import itertools
from urllib.parse import urlparse

from django.urls import reverse
from django.utils import timezone

from portal.certificates.models import Certificate
from portal.lib import payloads
from portal.messaging.models import Direction, Message, Status

PERSONAS = ("anonymous", "outsider_user", "admin_user", "lead_user", "auditor_user", "superuser")
ADMIN_ONLY = {"admin_user", "superuser"}
ALL_ROLES = {"admin_user", "lead_user", "auditor_user", "superuser"}
_ids = itertools.count(1)


def as_persona(client, request, persona: str):
    """Sign the test client in as a persona fixture (or out, for "anonymous"); returns the user."""
    client.logout()
    if persona == "anonymous":
        return None
    user = request.getfixturevalue(persona)
    client.force_login(user)
    return user


def assert_access(response, persona: str, allowed: set[str], ok_status: int = 200) -> None:
    """Anonymous users go to the login page; allowed personas get `ok_status`; others get 403."""
    if persona == "anonymous":
        assert response.status_code == 302
        assert urlparse(response["Location"]).path == reverse("accounts:login")
    elif persona in allowed:
        assert response.status_code == ok_status, response.content[:500]
    else:
        assert response.status_code == 403


def make_message(mailbox, *, payload: bytes | None = b"payload bytes", **kwargs) -> Message:
    """An inbound message as a poll would store it (or outbound with direction=Direction.OUTBOUND)."""
    direction = kwargs.setdefault("direction", Direction.INBOUND)
    inbound = direction == Direction.INBOUND
    kwargs.setdefault("workflow_id", "TEST_WORKFLOW")
    kwargs.setdefault("sender", "X26ABC2" if inbound else mailbox.mailbox_id)
    kwargs.setdefault("recipient", mailbox.mailbox_id if inbound else "X26ABC2")
    kwargs.setdefault("status", Status.RECEIVED if inbound else Status.ACCEPTED)
    kwargs.setdefault("mesh_message_id", f"20260101000000000000_{next(_ids):06d}")
    kwargs.setdefault("filename", "report.csv")
    if inbound:
        kwargs.setdefault("received_at", timezone.now())
    if payload is not None:
        stored = payloads.store_stream(io.BytesIO(payload), "in" if inbound else "out")
        kwargs.update(payload=stored.name, size_bytes=stored.size, payload_sha256=stored.sha256)
    return Message.objects.create(mailbox=mailbox, **kwargs)


def make_certificate(mailbox, **kwargs) -> Certificate:
    """A certificate row without real key material, for pages that only display it."""
    kwargs.setdefault("common_name", f"{mailbox.mailbox_id}.X26.api.mesh-client.nhs.uk")
    kwargs.setdefault(
        "csr_pem", "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    )
    kwargs.setdefault(
        "private_key", "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    )
    return Certificate.objects.create(mailbox=mailbox, **kwargs)


def assert_no_inline_code(html: str) -> None:
    """The strict CSP forbids inline scripts and style attributes: pages must not rely on them."""
    import re

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
