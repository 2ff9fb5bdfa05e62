"""The raw body is read exactly, through gunicorn's own reader or Django's stream, never past it."""

from __future__ import annotations

import io

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import IterUnreader

from portal.api.sending import ExactReader, IncompleteBody, body_stream


class _Request:
    def __init__(self, stream):
        self.META = {"wsgi.input": stream}


def _gunicorn_body(data: bytes, length: int) -> Body:
    pieces = [data[i : i + 8192] for i in range(0, len(data), 8192)]
    return Body(LengthReader(IterUnreader(pieces), length))


def _drain(reader) -> bytes:
    return b"".join(iter(lambda: reader.read(1024 * 1024), b""))


def test_it_reads_gunicorns_length_reader_exactly():
    data = bytes(range(256)) * 12_000 + b"next request"
    body = _gunicorn_body(data, len(data) - len(b"next request"))
    stream = body_stream(_Request(body))
    assert stream is body.reader
    assert _drain(ExactReader(stream, len(data) - 12)) == data[:-12]


def test_it_falls_back_once_gunicorn_has_buffered_something():
    data = b"x" * 5000
    body = _gunicorn_body(data, len(data))
    body.read(10)
    request = _Request(body)
    assert body_stream(request) is request


def test_it_raises_when_the_body_ends_short():
    body = _gunicorn_body(b"y" * 3000, 5000)
    with pytest.raises(IncompleteBody, match="after 3000 of the 5000 bytes"):
        _drain(ExactReader(body_stream(_Request(body)), 5000))


def test_it_leaves_other_servers_streams_alone():
    request = _Request(io.BytesIO(b"abc"))
    assert body_stream(request) is request
