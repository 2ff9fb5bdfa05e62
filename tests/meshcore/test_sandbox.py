"""meshcore against the real mesh-sandbox (AUTH_MODE=full, STORE_MODE=memory, SHARED_KEY=TestKey)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import time

import pytest

from meshcore import (
    MeshAuthenticationError,
    MeshChunkLockedError,
    MeshError,
    MeshGoneError,
    MeshNotFoundError,
    MeshSendRejectedError,
)

pytestmark = pytest.mark.sandbox

KiB = 1024


def _mixed_payload(size: int, seed: int = 1) -> bytes:
    """Text with some random stretches: compressible, but not trivially."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        part = rng.choice(
            [b"%d,SMITH,JOHN,1970-01-01,LS1 4AB\n" % rng.randrange(10**6) * 50, os.urandom(3000)]
        )
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def _download(client, message_id):
    into = io.BytesIO()
    info = client.download(message_id, into)
    return info, into.getvalue()


def test_it_pings_and_handshakes(sender):
    assert sender.ping()["status"] == "running"
    result = sender.handshake()
    assert result.mailbox_id == "X26ABC1"
    assert abs(result.clock_skew_seconds) < 120


def test_it_sends_receives_and_acknowledges_a_small_message(sender, recipient):
    message_id = sender.send(
        "X26ABC2",
        "TEST_WORKFLOW",
        b"id,value\n1,42\n",
        filename="values.csv",
        local_id="local-1",
        subject="Values",
        content_type="text/csv",
        checksum="md5:abc123",
        encrypted=True,
    )
    assert list(recipient.iter_inbox()) == [message_id]
    assert recipient.inbox_count() == 1
    info, body = _download(recipient, message_id)
    assert body == b"id,value\n1,42\n"
    assert (info.message_type, info.sender, info.recipient) == ("DATA", "X26ABC1", "X26ABC2")
    assert (info.workflow_id, info.filename, info.local_id) == (
        "TEST_WORKFLOW",
        "values.csv",
        "local-1",
    )
    assert (info.subject, info.content_type, info.checksum) == ("Values", "text/csv", "md5:abc123")
    assert (
        info.encrypted and not info.compressed and info.total_chunks == 1 and info.size == len(body)
    )
    assert recipient.head(message_id).local_id == "local-1"
    recipient.acknowledge(message_id)
    assert list(recipient.iter_inbox()) == []


def test_it_sends_a_multi_chunk_compressed_message_and_receives_it_byte_exact(sender, recipient):
    data = _mixed_payload(400 * KiB)
    progress = []
    message_id = sender.send(
        "X26ABC2",
        "TEST_WORKFLOW",
        data,
        chunk_size=64 * KiB,
        content_type="text/csv",
        on_progress=lambda *args: progress.append(args),
    )
    assert progress == [(k, 7, message_id) for k in range(1, 8)]
    info, body = _download(recipient, message_id)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert info.total_chunks == 7 and info.chunk_range == "1:7"
    assert info.transport_encoding == "gzip" and info.content_type == "text/csv"


def test_it_sends_uncompressed_and_ignores_the_sandbox_compressed_flag(sender, recipient):
    data = os.urandom(150 * KiB)
    message_id = sender.send("X26ABC2", "TEST_WORKFLOW", data, chunk_size=64 * KiB, compress=False)
    info, body = _download(recipient, message_id)
    assert body == data and info.total_chunks == 3
    # The sandbox gzips in transit and then claims mex-Content-Compressed: Y (quirk 10).
    assert info.transport_encoding == "gzip" and info.compressed is False


def test_it_sends_from_a_file_and_from_a_generator(sender, recipient, tmp_path):
    data = _mixed_payload(200 * KiB, seed=2)
    path = tmp_path / "payload.csv"
    path.write_bytes(data)
    with open(path, "rb") as source:
        from_file = sender.send("X26ABC2", "TEST_WORKFLOW", source, chunk_size=50 * KiB)
    from_generator = sender.send(
        "X26ABC2",
        "TEST_WORKFLOW",
        (data[i : i + 7000] for i in range(0, len(data), 7000)),
        chunk_size=50 * KiB,
    )
    assert _download(recipient, from_file)[1] == data
    assert _download(recipient, from_generator)[1] == data


def test_it_pages_through_more_than_1200_messages(sender, recipient):
    started = time.monotonic()
    sent = [
        sender.send("X26ABC2", "TEST_WORKFLOW", b"m%d" % n, compress=False) for n in range(1201)
    ]
    sending = time.monotonic() - started
    received = list(recipient.iter_inbox())
    assert received == sent, "every id, oldest first, across pages of 500"
    assert len(list(recipient.iter_inbox(page_size=10))[:25]) == 25
    assert sending < 60, f"sending 1,201 small messages took {sending:.1f}s"


def test_it_filters_the_inbox_by_workflow(sender, recipient):
    ids = {
        wf: sender.send("X26ABC2", wf, b"x", compress=False) for wf in ["PATH", "PATH_ACK", "RAD"]
    }
    assert list(recipient.iter_inbox(workflow_filter="PATH")) == [ids["PATH"]]
    assert list(recipient.iter_inbox(workflow_filter="PATH*")) == [ids["PATH"], ids["PATH_ACK"]]
    assert list(recipient.iter_inbox(workflow_filter="!PATH*")) == [ids["RAD"]]
    assert list(recipient.iter_inbox(workflow_filter="*_ACK*")) == [ids["PATH_ACK"]]


def test_it_tracks_a_message_from_accepted_to_acknowledged(sender, recipient):
    message_id = sender.send("X26ABC2", "TEST_WORKFLOW", b"track me", local_id="track-1")
    status = sender.track(message_id)
    assert (status.status, status.status_success, status.local_id) == ("accepted", True, "track-1")
    assert (status.recipient, status.recipient_name) == ("X26ABC2", "TESTMB2")
    assert status.upload_timestamp is not None
    recipient.acknowledge(message_id)
    assert sender.track(message_id).is_acknowledged


def test_it_tracks_by_local_id_for_reconciliation(sender):
    message_id = sender.send("X26ABC2", "TEST_WORKFLOW", b"once", local_id="unique-1")
    found = sender.track_by_local_id("unique-1")
    assert (found.message_id, found.status, found.local_id) == (message_id, "accepted", "unique-1")
    with pytest.raises(MeshNotFoundError):
        sender.track_by_local_id("never-used")
    sender.send("X26ABC2", "TEST_WORKFLOW", b"twice", local_id="unique-1")
    with pytest.raises(MeshError) as raised:
        sender.track_by_local_id("unique-1")
    assert raised.value.status == 300 and "several" in str(raised.value)


def test_it_looks_up_mailboxes(sender):
    assert [tuple(ref) for ref in sender.lookup("X26", "TEST_WORKFLOW")] == [("X26ABC2", "TESTMB2")]
    assert sender.lookup("X26", "NO_SUCH_WORKFLOW") == []
    found = sender.workflow_search("TEST_WORKFLOW_ACK")
    assert sorted(ref.mailbox_id for ref in found) == ["X26ABC1", "X26ABC3"]


def test_it_reports_an_unknown_recipient(sender):
    with pytest.raises(MeshSendRejectedError) as raised:
        sender.send("X26XXX9", "TEST_WORKFLOW", b"to nobody")
    assert (raised.value.status, raised.value.code, raised.value.event) == (417, "12", "SEND")


def test_it_reports_a_wrong_password(make_client):
    client = make_client("X26ABC1", password="not-the-password")
    with pytest.raises(MeshAuthenticationError) as raised:
        client.handshake()
    assert raised.value.status == 403
    with pytest.raises(MeshAuthenticationError):
        client.send("X26ABC2", "TEST_WORKFLOW", os.urandom(3 * 1024 * KiB))


def test_it_reads_an_injected_non_delivery_report(sandbox, sender):
    original = sender.send("X26ABC2", "TEST_WORKFLOW", b"never collected", local_id="ndr-1")
    report_id = sandbox.inject_report(
        mailbox_id="X26ABC1",
        code="14",
        description="ignored for undeliverable",
        workflow_id="TEST_WORKFLOW",
        subject="results",
        local_id="ndr-1",
        linked_message_id=original,
    )
    assert list(sender.iter_inbox()) == [report_id]
    info, body = _download(sender, report_id)
    assert info.is_report and body == b"" and info.size == 0
    assert (info.linked_message_id, info.local_id, info.subject) == (
        original,
        "ndr-1",
        "NDR: results",
    )
    assert (info.status_code, info.status_event, info.status_success) == ("14", "SEND", False)
    assert "5 days" in info.status_description
    sender.acknowledge(report_id)
    assert list(sender.iter_inbox()) == []


def test_it_reads_an_error_report_with_its_own_code(sandbox, sender):
    report_id = sandbox.inject_report(
        mailbox_id="X26ABC1",
        code="17",
        description="Workflow ID not registered",
        workflow_id="TEST_WORKFLOW",
        status="error",
        linked_message_id="ORIGINAL-1",
    )
    info, _ = _download(sender, report_id)
    assert (info.message_type, info.status_code, info.status_event) == ("REPORT", "17", "TRANSFER")
    assert info.linked_message_id == "ORIGINAL-1"


def test_it_reports_a_missing_message(recipient):
    with pytest.raises(MeshNotFoundError) as raised:
        recipient.download("0123456789ABCDEF0123456789ABCDEF", io.BytesIO())
    assert (raised.value.status, raised.value.code) == (404, "20")


def test_it_resumes_an_interrupted_chunked_send(sender, recipient, tmp_path):
    data = _mixed_payload(384 * KiB, seed=3)
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    saved = {}

    def crash_after_chunk_two(chunk_number, total, message_id):
        saved.update(message_id=message_id, done=chunk_number, total=total)
        if chunk_number == 2:
            raise KeyboardInterrupt("worker killed")

    with pytest.raises(KeyboardInterrupt), open(path, "rb") as source:
        sender.send(
            "X26ABC2",
            "TEST_WORKFLOW",
            source,
            chunk_size=64 * KiB,
            on_progress=crash_after_chunk_two,
        )
    assert saved == {"message_id": saved["message_id"], "done": 2, "total": 6}
    assert sender.track(saved["message_id"]).status == "uploading"
    assert list(recipient.iter_inbox()) == []
    with pytest.raises(MeshGoneError):
        recipient.download(saved["message_id"], io.BytesIO())

    resumed = []
    with open(path, "rb") as source:
        message_id = sender.send(
            "X26ABC2",
            "TEST_WORKFLOW",
            source,
            chunk_size=64 * KiB,
            resume_from=(saved["message_id"], saved["done"]),
            on_progress=lambda *args: resumed.append(args[0]),
        )
    assert message_id == saved["message_id"] and resumed == [3, 4, 5, 6]
    info, body = _download(recipient, message_id)
    assert body == data and info.total_chunks == 6


def test_it_reports_a_chunk_sent_after_the_message_was_finalised(sender):
    message_id = sender.send("X26ABC2", "TEST_WORKFLOW", b"a" * 200, chunk_size=100)
    with pytest.raises(MeshChunkLockedError) as raised:
        sender.send_chunk(message_id, 2, 2, b"late")
    assert raised.value.status == 423


def test_it_finishes_a_resumed_send_whose_last_chunk_had_already_arrived(sender, recipient):
    # A worker crashed after MESH took the last chunk but before it saved that progress.
    data = b"a" * 200
    message_id = sender.send("X26ABC2", "TEST_WORKFLOW", data, chunk_size=100)
    resumed = sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, chunk_size=100, resume_from=(message_id, 1)
    )
    assert resumed == message_id
    assert sender.track(message_id).status == "accepted"
    assert list(recipient.iter_inbox()) == [message_id]
