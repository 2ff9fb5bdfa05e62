"""The recorder: exchanges labelled by mailbox, credentials redacted again, long scenarios sampled."""

from __future__ import annotations

from meshcore import Exchange
from portal.conformance.recorder import HEAD, TAIL, Recorder, header


def _exchange(
    n: int, *, status: int | None = 200, path: str = "/messageexchange/X26ABC1/inbox/M", **headers
) -> Exchange:
    return Exchange(
        method="GET",
        path=f"{path}{n}" if path.endswith("/M") else path,
        status=status,
        request_headers=headers,
        elapsed_ms=1.0,
    )


def test_it_labels_exchanges_and_redacts_any_credential_meshcore_let_through():
    recorder = Recorder()
    record = recorder.callback("X26ABC1")
    record(_exchange(1, Authorization="NHSMESH X26ABC1:<redacted>", Cookie="a=b"))
    record(_exchange(2, Authorization="NHSMESH X26ABC1:abc:1:202601011200:deadbeef"))
    first, second = recorder.entries
    assert first["mailbox"] == "X26ABC1" and first["seq"] == 1
    assert first["request_headers"] == {
        "Authorization": "NHSMESH X26ABC1:<redacted>",
        "Cookie": "<redacted>",
    }
    assert second["request_headers"]["Authorization"] == "<redacted>"


def test_it_redacts_a_cookie_in_a_response_too():
    recorder = Recorder()
    answer = Exchange(
        method="GET",
        path="/messageexchange/X26ABC1",
        status=200,
        response_headers={"Set-Cookie": "session=s3cret", "mex-MessageID": "M1"},
    )
    recorder.callback("X26ABC1")(answer)
    assert recorder.entries[0]["response_headers"] == {
        "Set-Cookie": "<redacted>",
        "mex-MessageID": "M1",
    }


def test_it_keeps_the_head_failures_listings_and_tail_of_a_long_scenario():
    recorder = Recorder()
    record = recorder.callback("X26ABC1")
    for n in range(1, 1001):
        if n == 500:
            record(_exchange(n, status=None))
        elif n == 600:
            record(_exchange(n, path="/messageexchange/X26ABC1/inbox"))
        else:
            record(_exchange(n))
    kept, total = recorder.take()
    assert total == 1000 and recorder.entries == []
    seqs = [entry["seq"] for entry in kept]
    assert seqs == [*range(1, HEAD + 1), 500, 600, *range(1001 - TAIL, 1001)]


def test_it_pauses_and_records_manual_requests():
    recorder = Recorder()
    recorder.add_manual(
        "X26ABC1",
        method="POST",
        path="/messageexchange/admin/report",
        status=200,
        elapsed_ms=2.5,
        note="sandbox admin API",
    )
    recorder.paused = True
    recorder.callback("X26ABC1")(_exchange(1))
    (entry,) = recorder.entries
    assert entry["note"] == "sandbox admin API" and entry["status"] == 200


def test_it_reads_headers_whatever_their_case():
    assert header({"MEX-ClientVersion": "x"}, "mex-clientversion") == "x"
    assert header({}, "mex-OSName") is None
