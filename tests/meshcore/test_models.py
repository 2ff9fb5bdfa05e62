"""Parsing MESH headers and JSON into typed results."""

from __future__ import annotations

from datetime import UTC, datetime

from meshcore.models import message_info_from_headers, parse_timestamp, tracking_from_json


def test_it_parses_every_timestamp_shape_mesh_uses():
    expected = datetime(2026, 11, 28, 18, 42, 13, tzinfo=UTC)
    assert parse_timestamp("20261128184213") == expected
    assert parse_timestamp("2026-11-28T18:42:13") == expected
    assert parse_timestamp("2026-11-28T18:42:13Z") == expected
    assert parse_timestamp("2026-11-28T19:42:13+01:00") == expected
    assert parse_timestamp("202611281842") == expected.replace(second=0)
    assert (
        parse_timestamp("") is None
        and parse_timestamp("soon") is None
        and parse_timestamp(None) is None
    )


def test_it_reads_headers_in_any_case():
    info = message_info_from_headers(
        "M1",
        {
            "MEX-MESSAGETYPE": "data",
            "Mex-Chunk-Range": "1:4",
            "mex-from": "X26ABC1",
            "Content-Type": "application/octet-stream",
            "mex-content-type": "text/csv",
            "mex-content-encrypted": "Y",
        },
    )
    assert info.message_type == "DATA" and info.total_chunks == 4
    assert info.content_type == "text/csv" and info.encrypted and not info.compressed
    assert info.sender == "X26ABC1" and info.message_id == "M1"


def test_it_reads_v2_tracking_with_naive_sandbox_timestamps():
    status = tracking_from_json(
        "M1",
        {
            "message_id": "M1",
            "status": "acknowledged",
            "status_success": True,
            "upload_timestamp": "2026-11-23T19:22:10.539423",
            "recipient": "X26ABC2",
        },
    )
    assert status.is_acknowledged and status.status_success
    assert status.upload_timestamp.tzinfo is UTC
    assert status.raw["recipient"] == "X26ABC2"
