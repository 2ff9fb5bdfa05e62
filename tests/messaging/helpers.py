from __future__ import annotations

import io

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
        **kwargs,
    )


def payload_bytes(message: Message) -> bytes:
    with message.payload.open("rb") as handle:
        return handle.read()
