"""MESH rules the live service enforces (issue 12): one request whenever the message fits, and
business acknowledgements on `<WORKFLOW>_ACK`.

The single-request scenario runs at a scaled-down request limit (SCALED_LIMIT): the rule and
meshcore's decision are the same at 20,000,000 bytes, but a conformance run should not upload
tens of megabytes to prove it. What went over the wire is read from the recorded exchanges.
"""

from __future__ import annotations

import os

import meshcore

from ..recorder import header
from .base import Context, NotApplicable, Step, payload_text

SCALED_LIMIT = 100_000
ACK_SUFFIX = "_ACK"


def _posts(step: Step, mailbox_id: str) -> list[dict]:
    return [e for e in step.exchanges(mailbox_id, "POST") if "/outbox" in e["path"]]


def _ranges(posts: list[dict]) -> list[str]:
    return [header(e["request_headers"], "mex-Chunk-Range") or "" for e in posts]


def _csv_rows(size: int) -> bytes:
    """A plainly compressible extract (numbered rows of a fixed shape), at least `size` bytes."""
    rows, number = [b"row,kind,value,date\n"], 0
    while sum(map(len, rows)) < size:
        number += 1
        rows.append(b"%d,conformance,%d,2026-12-03\n" % (number, number % 97))
    return b"".join(rows)


def single_request(ctx: Context, step: Step) -> str:
    """A message larger than the limit raw but within it compressed goes in one request; an
    incompressible one over the limit goes in chunks that each fit."""
    peer = ctx.peer.mailbox_id
    fits = _csv_rows(4 * SCALED_LIMIT)
    step.check(len(fits) > meshcore.max_chunk_size(SCALED_LIMIT), "The payload is too small.")
    mesh_id, _, received = ctx.deliver(
        step,
        ctx.client,
        peer,
        ctx.workflow_id,
        fits,
        "single-request",
        max_request_bytes=SCALED_LIMIT,
        content_type="text/csv",
    )
    step.check(received == fits, "The message received differs from the one sent.")
    whole = _ranges(_posts(step, ctx.mailbox.mailbox_id))
    step.check(whole == ["1:1"], f"A message that fits went out as {whole}, not one request (1:1).")

    random_data = os.urandom(2 * SCALED_LIMIT)
    chunked_id, _, received = ctx.deliver(
        step,
        ctx.client,
        peer,
        ctx.workflow_id,
        random_data,
        "chunked-to-fit",
        max_request_bytes=SCALED_LIMIT,
    )
    step.check(received == random_data, "The chunked message received differs from the one sent.")
    ranges = _ranges(_posts(step, ctx.mailbox.mailbox_id))[1:]
    expected = -(-len(random_data) // meshcore.max_chunk_size(SCALED_LIMIT))
    step.check(
        len(ranges) == expected,
        f"The random message went out in {len(ranges)} requests, expected {expected}.",
    )
    step.measure("limit_bytes", SCALED_LIMIT)
    step.measure("compressible_bytes", len(fits))
    step.measure("random_bytes", len(random_data))
    step.measure("random_requests", ranges)
    return (
        f"{len(fits)} bytes of CSV (over the {SCALED_LIMIT:,}-byte limit raw, within it gzipped) "
        f"went to {peer} in one request ({mesh_id}); {len(random_data)} random bytes went in "
        f"{len(ranges)} chunks of at most {meshcore.max_chunk_size(SCALED_LIMIT):,} raw bytes, "
        f"each within the limit compressed ({chunked_id})."
    )


def business_ack(ctx: Context, step: Step) -> str:
    """The mailbox sends; the peer answers on the same workflow plus _ACK, naming the message by
    its local id; the mailbox receives the acknowledgement and can link it."""
    peer = ctx.peer.mailbox_id
    ack_workflow = ctx.workflow_id + ACK_SUFFIX
    local_id = ctx.local_id("acked")
    original, _, _ = ctx.deliver(
        step,
        ctx.client,
        peer,
        ctx.workflow_id,
        payload_text("acked", 512),
        "acked",
        local_id=local_id,
    )
    try:
        ack_id, info, _ = ctx.deliver(
            step,
            ctx.peer_client,
            ctx.mailbox.mailbox_id,
            ack_workflow,
            payload_text("business-ack", 128),
            "business-ack",
            local_id=local_id,
        )
    except meshcore.MeshSendRejectedError as exc:
        raise NotApplicable(
            f"{peer} may not send {ack_workflow} to {ctx.mailbox.mailbox_id} ({exc}): register "
            "the _ACK workflow for both mailboxes with NHS England, or choose a workflow that has one."
        ) from None
    step.check(
        (info.workflow_id or "").upper() == ack_workflow.upper(),
        f"The acknowledgement arrived on {info.workflow_id!r}, not {ack_workflow}.",
    )
    step.check(
        info.local_id == local_id,
        f"The acknowledgement's local id {info.local_id!r} does not name the message ({local_id}).",
    )
    step.measure("acknowledged_message", original)
    step.measure("acknowledgement", ack_id)
    return (
        f"{ctx.mailbox.mailbox_id} sent {original} on {ctx.workflow_id}; {peer} answered with "
        f"{ack_id} on {ack_workflow} carrying the same local id, which links the two."
    )
