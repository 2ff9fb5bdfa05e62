from __future__ import annotations

import io

import pytest

from portal.audit.services import Actor
from portal.messaging import outbox
from portal.messaging.models import Message
from portal.messaging.services import message_queue_send


def queue(
    mailbox,
    data: bytes = b"hello MESH",
    *,
    to: str = "X26ABC2",
    workflow: str = "TEST_WORKFLOW",
    **kwargs,
) -> Message:
    return message_queue_send(
        mailbox=mailbox,
        recipient=to,
        workflow_id=workflow,
        source=io.BytesIO(data),
        size=len(data),
        filename=kwargs.pop("filename", "hello.txt"),
        actor=kwargs.pop("actor", Actor.command()),
        **kwargs,
    )


def payload_bytes(message: Message) -> bytes:
    with message.payload.open("rb") as handle:
        return handle.read()


class WorkerDied(BaseException):
    """Stands in for SIGKILL: nothing in the worker catches it, so no clean-up runs."""


def send_until_worker_dies_at_chunk(monkeypatch, message: Message, chunk: int) -> None:
    """Send `message` until MESH has taken chunk `chunk`; the worker dies before recording it."""
    real_refresh = outbox._refresh_claim

    def die_before_recording(message_id, worker, **fields):
        if fields.get("chunks_done") == chunk:
            raise WorkerDied()
        return real_refresh(message_id, worker, **fields)

    monkeypatch.setattr(outbox, "_refresh_claim", die_before_recording)
    with pytest.raises(WorkerDied):
        outbox.message_send(message_id=message.pk)
    monkeypatch.setattr(outbox, "_refresh_claim", real_refresh)
