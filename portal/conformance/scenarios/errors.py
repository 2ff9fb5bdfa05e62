"""Error cases: wrong password (403), unknown recipient (417/12), no such message (404), and
downloading after acknowledgement (whatever the environment answers, recorded)."""

from __future__ import annotations

import io
import secrets
import uuid

import meshcore

from .base import Context, ScenarioFailed, Step, payload_text

# A mailbox id no MESH environment issues (real ones are ODS code + letters and digits).
UNKNOWN_RECIPIENT = "NEOMESHNOBOX9"


def wrong_password() -> str:
    """A password that is certainly wrong; it is used once and never stored or logged."""
    return f"not-the-password-{secrets.token_hex(16)}"


def _status_of(error: meshcore.MeshError) -> str:
    code = f", MESH code {error.event or '?'}/{error.code}" if error.code else ""
    return f"HTTP {error.status}{code}"


def authentication_refused(ctx: Context, step: Step) -> str:
    mailbox = ctx.mailbox.mailbox_id
    with ctx.make_client(ctx.mailbox, password=wrong_password()) as impostor:
        try:
            impostor.handshake()
        except meshcore.MeshAuthenticationError as exc:
            step.check(exc.status == 403, f"Expected HTTP 403, got {_status_of(exc)}.")
            step.measure("answer", _status_of(exc))
            step.note(
                "Witness case 701 authenticates against a mailbox NHS England disabled in MOLES; "
                "no environment lets us disable one, so this checks the same 403 path with a "
                "deliberately wrong password (never recorded)."
            )
            return f"MESH refused {mailbox} with a wrong password: {_status_of(exc)} ({exc.description})."
    raise ScenarioFailed("MESH accepted a handshake with a wrong password.")


def unknown_recipient(ctx: Context, step: Step) -> str:
    try:
        mesh_id = ctx.send(
            step, ctx.client, UNKNOWN_RECIPIENT, ctx.workflow_id, b"to nobody", "unknown recipient"
        )
    except meshcore.MeshSendRejectedError as exc:
        step.measure("answer", _status_of(exc))
        step.check(exc.status == 417, f"Expected HTTP 417, got {_status_of(exc)}.")
        step.check(exc.code == "12", f"Expected MESH error code 12, got {exc.code!r}.")
        return (
            f"MESH rejected the send to {UNKNOWN_RECIPIENT}: {_status_of(exc)} ({exc.description})."
        )
    raise ScenarioFailed(f"MESH accepted a message to {UNKNOWN_RECIPIENT} as {mesh_id}.")


def missing_message(ctx: Context, step: Step) -> str:
    mesh_id = uuid.uuid4().hex.upper()
    try:
        ctx.client.download(mesh_id, io.BytesIO())
    except meshcore.MeshNotFoundError as exc:
        step.measure("answer", _status_of(exc))
        return f"Downloading {mesh_id}, which does not exist, gave {_status_of(exc)} ({exc.description})."
    raise ScenarioFailed(f"MESH returned a message for the made-up id {mesh_id}.")


def after_acknowledgement(ctx: Context, step: Step) -> str:
    """Records the answer; does not assert one (sandbox: 200, quirk 9; live may say 410)."""
    data = payload_text("after-ack", 512)
    mesh_id, _info, _received = ctx.deliver(
        step, ctx.peer_client, ctx.mailbox.mailbox_id, ctx.reply_workflow_id, data, "acknowledged"
    )
    into = io.BytesIO()
    try:
        ctx.client.download(mesh_id, into)
    except meshcore.MeshTransientError:
        raise  # no answer at all: that is a failure, not an answer to record
    except meshcore.MeshError as exc:
        answer = _status_of(exc)
        step.measure("answer", answer)
        if exc.status == 410:
            step.note("410 Gone: the message is no longer downloadable, as the spec describes.")
        return (
            f"Downloading {mesh_id} again after acknowledging it gave {answer} ({exc.description})."
        )
    answer = "HTTP 200"
    step.measure("answer", answer)
    step.payload("downloaded again after acknowledgement", into.getvalue(), message_id=mesh_id)
    if ctx.is_sandbox:
        step.note(
            "mesh-sandbox still serves acknowledged messages (quirk 9); live MESH may answer 410 "
            "Gone. A client must never rely on downloading a message again after acknowledging it."
        )
    return (
        f"Downloading {mesh_id} again after acknowledging it gave {answer}: recorded, not judged."
    )
