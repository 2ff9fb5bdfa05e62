from __future__ import annotations

import io
import uuid
import zlib

import pytest
import requests

from meshcore.auth import build_token
from portal.audit.services import Actor
from portal.messaging import outbox
from portal.messaging.models import Message
from portal.messaging.services import message_queue_send
from tests.sandbox import PASSWORD, SHARED_KEY

MiB = 1024 * 1024


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


def raw_send(sandbox, data: bytes, **headers: str) -> str:
    """X26ABC1 -> X26ABC2 as any MESH client could send it: headers meshcore would refuse."""
    token = build_token("X26ABC1", PASSWORD, SHARED_KEY.encode(), nonce=str(uuid.uuid4()))
    response = requests.post(
        f"{sandbox.url}/messageexchange/X26ABC1/outbox",
        data=data,
        headers={
            "Authorization": token,
            "Accept": "application/vnd.mesh.v2+json",
            "mex-From": "X26ABC1",
            "mex-To": "X26ABC2",
            "mex-WorkflowID": "TEST_WORKFLOW",
            "Content-Type": "application/octet-stream",
            **headers,
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


def gzip_bomb(decoded: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(bytes(MiB)) for _ in range(decoded // MiB)]
    return b"".join([*parts, compressor.flush()])
