"""High volume (witness case 601): hundreds of messages, the inbox paged past 500, all drained."""

from __future__ import annotations

import io
import time

from .base import Context, ScenarioFailed, Step

PAGE_SIZE = 500  # MESH's maximum page: more than this many messages needs links.next


def high_volume(ctx: Context, step: Step) -> str:
    mailbox, peer = ctx.mailbox.mailbox_id, ctx.peer.mailbox_id
    count = ctx.high_volume_count
    step.check(
        count > PAGE_SIZE,
        f"CONFORMANCE_HIGH_VOLUME_COUNT is {count}: paging past {PAGE_SIZE} needs more messages.",
    )
    expected: dict[str, bytes] = {}
    local_prefix = ctx.local_id("volume")
    started = time.monotonic()
    for number in range(1, count + 1):
        ctx.checkpoint()  # a lost poll claim would let the poller drain these messages
        data = b"NeoMesh conformance high volume, message %d of %d\n" % (number, count)
        mesh_id = ctx.peer_client.send(
            mailbox,
            ctx.reply_workflow_id,
            data,
            local_id=f"{local_prefix}-{number}",
            filename=f"volume-{number}.txt",
            content_type="text/plain",
        )
        ctx.outstanding[mesh_id] = ctx.client
        expected[mesh_id] = data
        step.message(mesh_id)
        step.progress(f"Sent {number} of {count} messages…")
    sent_seconds = time.monotonic() - started
    # One entry for all of them: the hash is over every payload, in the order they were sent.
    step.payload(f"{count} messages, concatenated in send order", b"".join(expected.values()))

    started = time.monotonic()
    missing = ctx.wait_listed(ctx.client, expected, step)
    listed_seconds = time.monotonic() - started
    step.check(
        not missing, f"{len(missing)} of {count} messages were never listed in {mailbox}'s inbox."
    )
    listings = step.exchanges(mailbox, "GET", "/inbox")
    followed = [e for e in listings if "continue_from" in (e.get("query") or "")]
    step.check(bool(followed), "The inbox was never paged: no request followed links.next.")

    started = time.monotonic()
    received = 0
    for mesh_id, data in expected.items():
        ctx.checkpoint()
        into = io.BytesIO()
        ctx.client.download(mesh_id, into)
        if into.getvalue() != data:
            raise ScenarioFailed(f"{mesh_id} arrived with different content.")
        ctx.acknowledge(ctx.client, mesh_id)
        received += 1
        step.progress(f"Received and acknowledged {received} of {count} messages…")
    received_seconds = time.monotonic() - started

    step.measure("messages", count)
    step.measure("send_seconds", round(sent_seconds, 2))
    step.measure("list_seconds", round(listed_seconds, 2))
    step.measure("inbox_requests", len(listings))
    step.measure("pages_followed", len(followed))
    step.measure("receive_and_ack_seconds", round(received_seconds, 2))
    step.measure("messages_per_second_sent", round(count / max(sent_seconds, 0.001), 1))
    step.measure("messages_per_second_received", round(count / max(received_seconds, 0.001), 1))
    return (
        f"{peer} sent {count} messages in {sent_seconds:.1f} s; {mailbox}'s inbox listed them all "
        f"across pages of at most {PAGE_SIZE} ({len(followed)} links.next followed); every message "
        f"was downloaded byte for byte and acknowledged in {received_seconds:.1f} s."
    )
