"""Downloads: per-response Content-Encoding from the raw stream, REPORTs, bad gzip, retries."""

from __future__ import annotations

import gzip
import io
import os
import random

import pytest
import responses
from responses.registries import OrderedRegistry
from urllib3.exceptions import ProtocolError

import meshcore.receiving as receiving_module
from meshcore import MeshProtocolError, MeshTransientError
from meshcore.decoding import GzipDecoder
from tests.meshcore.helpers import mailbox_url, unit_client

INBOX_M1 = mailbox_url("inbox", "M1")


def _headers(chunk: str, encoding: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"mex-MessageType": "DATA", "mex-Chunk-Range": chunk, "mex-From": "X26ABC2"}
    if encoding:
        headers["Content-Encoding"] = encoding
    headers.update(extra)
    return headers


def test_it_decodes_each_chunk_by_its_own_content_encoding():
    parts = [b"first part,", b"second part,", b"third part"]
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            INBOX_M1, status=206, body=gzip.compress(parts[0]), headers=_headers("1:3", "gzip")
        )
        mock.get(f"{INBOX_M1}/2", status=206, body=parts[1], headers=_headers("2:3"))
        mock.get(
            f"{INBOX_M1}/3",
            status=200,
            body=gzip.compress(parts[2]),
            headers=_headers("3:3", "gzip"),
        )
        into = io.BytesIO()
        info = client.download("M1", into)
    assert into.getvalue() == b"".join(parts)
    assert info.size == len(b"".join(parts))
    assert info.total_chunks == 3
    assert info.transport_encoding == "gzip"
    assert info.sender == "X26ABC2"


def test_it_reads_the_raw_stream_so_requests_never_decodes_silently():
    # A gzip body inside gzip: only the transport layer must be undone, exactly once.
    inner = gzip.compress(b"application-level gzip")
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            INBOX_M1,
            body=gzip.compress(inner),
            headers=_headers("1:1", "gzip", **{"mex-Content-Compressed": "Y"}),
        )
        into = io.BytesIO()
        info = client.download("M1", into)
    assert into.getvalue() == inner
    assert info.compressed is False, "the flag is unreliable when the transport was gzip (quirk 10)"


def test_it_trusts_the_compressed_flag_without_transport_gzip():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            INBOX_M1,
            body=b"PK\x03\x04zip",
            headers=_headers("1:1", **{"mex-Content-Compressed": "Y"}),
        )
        info = client.download("M1", io.BytesIO())
    assert info.compressed is True and info.transport_encoding is None


def test_it_reads_a_report_without_fetching_chunks():
    headers = {
        "mex-MessageType": "REPORT",
        "mex-Chunk-Range": "1:0",
        "mex-Total-Chunks": "0",
        "mex-LinkedMsgID": "ORIGINAL",
        "mex-StatusCode": "14",
        "mex-StatusEvent": "SEND",
        "mex-StatusDescription": "Message not collected by recipient after 5 days",
        "mex-StatusSuccess": "ERROR",
        "mex-StatusTimestamp": "20261123101112",
        "mex-Subject": "NDR: results",
    }
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(INBOX_M1, body=b"", headers=headers)
        info = client.download("M1", io.BytesIO())
    assert info.is_report and info.message_type == "REPORT"
    assert (info.linked_message_id, info.status_code, info.status_event) == (
        "ORIGINAL",
        "14",
        "SEND",
    )
    assert info.status_success is False
    assert info.status_timestamp.isoformat() == "2026-11-23T10:11:12+00:00"
    assert info.total_chunks == 0 and info.size == 0 and info.sender is None


def test_it_rejects_a_body_that_is_not_gzip_despite_the_header():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(INBOX_M1, body=b"this is plain text", headers=_headers("1:1", "gzip"))
        with pytest.raises(MeshProtocolError, match="not valid gzip"):
            client.download("M1", io.BytesIO())


def test_it_rejects_a_truncated_gzip_body():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            INBOX_M1, body=gzip.compress(os.urandom(5000))[:-100], headers=_headers("1:1", "gzip")
        )
        with pytest.raises(MeshProtocolError, match="truncated"):
            client.download("M1", io.BytesIO())


def test_it_rejects_an_unsupported_content_encoding():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(INBOX_M1, body=b"\x00", headers=_headers("1:1", "br"))
        with pytest.raises(MeshProtocolError, match="unsupported Content-Encoding"):
            client.download("M1", io.BytesIO())


def test_it_decodes_concatenated_gzip_members_in_bounded_steps():
    decoder = GzipDecoder()
    data = gzip.compress(b"a" * 5_000_000) + gzip.compress(b"b" * 10)
    out = [piece for block in (data[:7], data[7:]) for piece in decoder.feed(block)]
    decoder.finish()
    assert b"".join(out) == b"a" * 5_000_000 + b"b" * 10
    assert max(len(piece) for piece in out) <= 1024 * 1024, "output is produced in bounded pieces"


def test_it_decodes_whatever_way_the_stream_is_split():
    rng = random.Random(7)
    payload = b"".join(rng.choice([b"abc" * 1000, os.urandom(700), b"\n"]) for _ in range(400))
    members = gzip.compress(payload[:9000]) + gzip.compress(payload[9000:], compresslevel=1)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(members)), 5))
        blocks = [members[a:b] for a, b in zip([0, *cuts], [*cuts, len(members)], strict=True)]
        decoder = GzipDecoder()
        out = b"".join(piece for block in blocks for piece in decoder.feed(block))
        decoder.finish()
        assert out == payload


def test_it_fetches_a_chunk_again_when_its_body_breaks_off(monkeypatch):
    real_copy = receiving_module.copy_response
    breaks = []

    def copy_that_breaks_once(response, into, *limits):
        if response.url.endswith("/2") and not breaks:
            breaks.append(into.write(b"half a chu"))  # partial data that must be rolled back
            raise ProtocolError("Connection broken: IncompleteRead")
        return real_copy(response, into, *limits)

    monkeypatch.setattr(receiving_module, "copy_response", copy_that_breaks_once)
    client = unit_client()
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        mock.get(INBOX_M1, status=206, body=b"chunk one ", headers=_headers("1:2"))
        mock.get(f"{INBOX_M1}/2", status=200, body=b"chunk two", headers=_headers("2:2"))
        mock.get(f"{INBOX_M1}/2", status=200, body=b"chunk two", headers=_headers("2:2"))
        into = io.BytesIO()
        info = client.download("M1", into)
    assert into.getvalue() == b"chunk one chunk two"
    assert info.size == len(b"chunk one chunk two")
    assert len(client._sleep) == 1


def test_it_maps_a_download_failure_after_retries_to_transient():
    client = unit_client(max_retries=1)
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        mock.get(INBOX_M1, status=503)
        mock.get(INBOX_M1, status=503)
        with pytest.raises(MeshTransientError):
            client.download("M1", io.BytesIO())
