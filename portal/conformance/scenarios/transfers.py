"""Handshake and transfers: send, receive and acknowledge; uncompressed; chunked both ways."""

from __future__ import annotations

import hashlib

from ..recorder import header
from .base import Context, Step, payload_text, sha256

CLIENT_HEADERS = ("mex-ClientVersion", "mex-OSName", "mex-OSVersion")


def handshake(ctx: Context, step: Step) -> str:
    result = ctx.client.handshake()
    calls = step.exchanges(
        ctx.mailbox.mailbox_id, "POST", f"/messageexchange/{ctx.mailbox.mailbox_id}"
    )
    step.check(bool(calls), "No handshake request was recorded.")
    sent = calls[-1]["request_headers"]
    missing = [name for name in CLIENT_HEADERS if not header(sent, name)]
    step.check(not missing, f"The handshake did not carry {', '.join(missing)}.")
    for name in (*CLIENT_HEADERS, "mex-OSArchitecture", "User-Agent"):
        if header(sent, name):
            step.measure(name, header(sent, name))
    if result.clock_skew_seconds is not None:
        step.measure("clock_skew_seconds", round(result.clock_skew_seconds, 1))
        if abs(result.clock_skew_seconds) > 600:
            step.note(
                f"The local clock is {result.clock_skew_seconds:.0f} s away from MESH's: live MESH "
                "rejects tokens more than 2 hours out."
            )
    return (
        f"MESH accepted the handshake of {ctx.mailbox.mailbox_id} (HTTP {calls[-1]['status']}) "
        f"with mex-ClientVersion “{header(sent, 'mex-ClientVersion')}”, mex-OSName "
        f"“{header(sent, 'mex-OSName')}” and mex-OSVersion “{header(sent, 'mex-OSVersion')}”."
    )


def _same(step: Step, label: str, sent: bytes, received: bytes) -> None:
    step.check(
        received == sent,
        f"{label}: received {len(received)} bytes (sha256 {sha256(received)[:16]}…), sent "
        f"{len(sent)} (sha256 {sha256(sent)[:16]}…).",
    )


def send_receive(ctx: Context, step: Step) -> str:
    mailbox, peer = ctx.mailbox.mailbox_id, ctx.peer.mailbox_id
    data = payload_text("send-receive", 2048)
    out_id, info, received = ctx.deliver(
        step,
        ctx.client,
        peer,
        ctx.workflow_id,
        data,
        "mailbox to peer",
        filename="conformance-201.csv",
        content_type="text/csv",
        checksum=f"sha256:{sha256(data)}",
    )
    _same(step, "Mailbox to peer", data, received)
    step.check(info.sender == mailbox, f"The peer saw sender {info.sender!r}, not {mailbox}.")
    step.check(
        info.workflow_id == ctx.workflow_id,
        f"The peer saw workflow {info.workflow_id!r}, not {ctx.workflow_id}.",
    )
    step.check(info.filename == "conformance-201.csv", f"Filename arrived as {info.filename!r}.")
    reply = payload_text("reply", 1024)
    in_id, info, received = ctx.deliver(
        step,
        ctx.peer_client,
        mailbox,
        ctx.reply_workflow_id,
        reply,
        "peer to mailbox",
        filename="conformance-202.csv",
        content_type="text/csv",
    )
    _same(step, "Peer to mailbox", reply, received)
    step.check(info.sender == peer, f"{mailbox} saw sender {info.sender!r}, not {peer}.")
    return (
        f"{mailbox} sent {out_id} ({len(data)} bytes); {peer} received it byte for byte and "
        f"acknowledged it. {peer} sent {in_id} ({len(reply)} bytes); {mailbox} received it byte "
        "for byte and acknowledged it."
    )


def uncompressed(ctx: Context, step: Step) -> str:
    mailbox, peer = ctx.mailbox.mailbox_id, ctx.peer.mailbox_id
    data = payload_text("uncompressed", 4096)
    mesh_id, info, received = ctx.deliver(
        step,
        ctx.peer_client,
        mailbox,
        ctx.reply_workflow_id,
        data,
        "uncompressed",
        compress=False,
        filename="conformance-401.csv",
        content_type="text/csv",
    )
    upload = step.exchanges(peer, "POST", "/outbox")[-1]
    step.check(
        not header(upload["request_headers"], "Content-Encoding"),
        "The send was meant to be uncompressed but carried a Content-Encoding.",
    )
    _same(step, "Uncompressed content", data, received)
    step.measure("transport_encoding", info.transport_encoding or "none")
    if info.transport_encoding == "gzip":
        step.note(
            "MESH gzipped the stored plain content in transit (Content-Encoding: gzip, "
            "mex-Content-Compressed: Y: sandbox quirk 10); meshcore decoded it and ignored the flag."
        )
    return (
        f"{peer} sent {mesh_id} uncompressed ({len(data)} bytes); {mailbox} received exactly "
        "those bytes and acknowledged it."
    )


def _chunked(ctx: Context, step: Step, *, inbound: bool, algorithm: str) -> str:
    sender, receiver = (ctx.peer, ctx.mailbox) if inbound else (ctx.mailbox, ctx.peer)
    sender_client = ctx.client_for(sender.mailbox_id)
    size = ctx.chunk_size * 2 + ctx.chunk_size // 2
    data = payload_text("chunked", size)
    digest = hashlib.new(algorithm, data).hexdigest()
    workflow = ctx.reply_workflow_id if inbound else ctx.workflow_id
    mesh_id, info, received = ctx.deliver(
        step,
        sender_client,
        receiver.mailbox_id,
        workflow,
        data,
        "chunked",
        compress=True,
        chunk_size=ctx.chunk_size,
        checksum=f"{algorithm}:{digest}",
        filename="conformance-chunked.csv",
        content_type="text/csv",
    )
    uploads = step.exchanges(sender.mailbox_id, "POST")
    chunk_posts = [e for e in uploads if "/outbox" in e["path"]]
    encodings = {header(e["request_headers"], "Content-Encoding") for e in chunk_posts}
    step.check(encodings == {"gzip"}, f"Chunks went out with Content-Encoding {encodings}.")
    step.check(info.total_chunks == 3, f"MESH reported {info.total_chunks} chunks, not 3.")
    downloads = step.exchanges(receiver.mailbox_id, "GET", "")
    statuses = [e["status"] for e in downloads if f"/inbox/{mesh_id}" in e["path"]]
    step.check(
        statuses[-3:] == [206, 206, 200],
        f"Chunk downloads answered {statuses}, expected 206, 206 then 200.",
    )
    _same(step, "Reassembled message", data, received)
    announced = (info.checksum or "").split(":", 1)
    step.check(
        len(announced) == 2 and announced[1] == hashlib.new(algorithm, received).hexdigest(),
        f"The checksum MESH passed on ({info.checksum!r}) does not match the received bytes.",
    )
    step.measure("chunks", info.total_chunks)
    step.measure("chunk_size", ctx.chunk_size)
    step.measure("size", len(data))
    return (
        f"{sender.mailbox_id} sent {mesh_id} in {info.total_chunks} gzip chunks of "
        f"{ctx.chunk_size} bytes ({len(data)} bytes in all); {receiver.mailbox_id} fetched chunks "
        f"as {', '.join(map(str, statuses[-3:]))}, reassembled them byte for byte, and the "
        f"{algorithm} checksum matched ({algorithm}:{digest[:16]}…)."
    )


def receive_chunked(ctx: Context, step: Step) -> str:
    return _chunked(ctx, step, inbound=True, algorithm="md5")


def send_chunked(ctx: Context, step: Step) -> str:
    return _chunked(ctx, step, inbound=False, algorithm="sha256")
