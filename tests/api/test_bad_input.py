"""Bad input: each a clear 4xx naming what to fix, nothing stored, nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from portal.api.models import IdempotencyKey
from portal.messaging.models import Message

pytestmark = [pytest.mark.django_db(transaction=True)]
SEND = {"mailbox": "X26ABC1", "recipient": "X26ABC2", "workflow_id": "TEST_WORKFLOW"}


def _stored_files() -> list[Path]:
    root = Path(django_settings.STORAGES["payloads"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    "params,field,words",
    [
        ({"recipient": None}, "recipient", "required"),
        ({"workflow_id": None}, "workflow_id", "required"),
        ({"mailbox": "X26NOPE"}, "mailbox", "no mailbox X26NOPE"),
        ({"recipient": "not a mailbox"}, "recipient", "mailbox id is 3 to 20"),
        ({"workflow_id": "OTHER_FLOW"}, "workflow_id", "not registered"),
        ({"subject": "x" * 501}, "subject", "no more than 500"),
        ({"subject": "Café results"}, "subject", "plain ASCII"),
        ({"local_id": "réf-1"}, "local_id", "plain ASCII"),
        ({"filename": "x" * 301}, "filename", "no more than 300"),
        ({"encrypted": "perhaps"}, "encrypted", "valid boolean"),
    ],
)
def test_it_names_the_field_at_fault(api, params, field, words):
    query = {**SEND, **params}
    answer = api.post("/messages/", data=b"a,b\n", params={k: v for k, v in query.items() if v})
    body = _problem(answer, 400)
    assert field in body["errors"], body
    assert words in " ".join(body["errors"][field]) and field in body["detail"]
    assert not Message.objects.exists() and not _stored_files()
    assert not IdempotencyKey.objects.exists()


def test_it_refuses_an_empty_payload(api):
    body = _problem(api.post("/messages/", data=b"", params=SEND), 400)
    assert "empty" in body["errors"]["payload"][0]


def test_it_refuses_a_body_over_the_limit_before_storing_it(api, settings):
    settings.MESH_MAX_UPLOAD_BYTES = 1000
    body = _problem(api.post("/messages/", data=b"x" * 1001, params=SEND), 413)
    assert "1001 bytes" in body["detail"] and "nothing was stored" in body["detail"]
    multipart = api.post(
        "/messages/", data=SEND, files={"file": ("a.bin", b"x" * (1024 * 1024 + 2000))}
    )
    _problem(multipart, 413)
    assert not Message.objects.exists() and not _stored_files()


def test_it_refuses_a_form_encoded_body(api):
    answer = api.post("/messages/", data={"payload": "x"}, params=SEND)
    assert "multipart/form-data" in _problem(answer, 415)["detail"]


def test_it_takes_multipart_and_names_a_missing_file(api, sandbox_mailboxes):
    body = _problem(api.post("/messages/", data=SEND, files={"other": ("a", b"x")}), 400)
    assert "file" in body["errors"]
    sent = api.post("/messages/", data=SEND, files={"file": ("r.csv", b"a,b\n", "text/csv")})
    assert sent.status_code == 202
    assert (sent.json()["filename"], sent.json()["content_type"]) == ("r.csv", "text/csv")


def test_it_refuses_malformed_json_and_a_wrong_content_type(api, sandbox_mailboxes):
    received = Message.objects.create(
        mailbox=sandbox_mailboxes[1],
        direction="in",
        workflow_id="TEST_WORKFLOW",
        status="acknowledged",
    )
    url = f"/messages/{received.pk}/confirm/"
    bad = api.post(url, data=b'{"sha256": ', headers={"Content-Type": "application/json"})
    assert "JSON" in _problem(bad, 400)["detail"]
    _problem(api.post(url, data=b"sha", headers={"Content-Type": "text/plain"}), 415)
    body = _problem(api.post(url, json={"sha256": "abc"}), 400)
    assert "sha256" in body["errors"]
    received.refresh_from_db()
    assert received.payload_confirmed_at is None


@pytest.mark.parametrize("cursor", ["garbage", None])
def test_it_refuses_a_cursor_from_another_query(api, sandbox_mailboxes, cursor):
    for _ in range(3):
        Message.objects.create(
            mailbox=sandbox_mailboxes[1],
            direction="in",
            workflow_id="TEST_WORKFLOW",
            status="acknowledged",
        )
    first = api.get("/messages/", params={"limit": 2, "direction": "in"}).json()
    assert len(first["results"]) == 2 and first["next"]
    assert len(api.get(first["next"]).json()["results"]) == 1
    if cursor is None:
        cursor = first["next"].split("cursor=")[1]
    other = api.get("/messages/", params={"limit": 2, "direction": "out", "cursor": cursor})
    assert "cursor" in _problem(other, 400)["errors"]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"status": "lost"}, "status"),
        ({"mailbox": "X26NOPE"}, "mailbox"),
    ],
)
def test_it_names_a_bad_filter(api, params, field):
    assert field in _problem(api.get("/messages/", params=params), 400)["errors"]


def test_it_answers_unknown_addresses_and_methods_with_problems(api):
    _problem(api.get("/nothing-here/"), 404)
    _problem(api.get("/messages/12345/"), 404)
    _problem(api.http.delete(api.url("/messages/")), 405)


def test_it_refuses_a_range_outside_the_file(api, sandbox_mailboxes):
    sent = api.post("/messages/", data=b"0123456789", params=SEND).json()
    url = sent["payload_url"]
    answer = api.get(url, headers={"Range": "bytes=50-60"})
    _problem(answer, 416)
    assert answer.headers["Content-Range"] == "bytes */10"
    assert api.get(url, headers={"Range": "bytes=-3"}).content == b"789"
    assert api.get(url, headers={"Range": "bytes=7-"}).content == b"789"
    assert api.get(url, headers={"Range": "bytes=0-1,4-5"}).status_code == 200


@pytest.mark.parametrize("key", ["k" * 201, "cl\u00e9-1"])
def test_it_refuses_an_oversized_or_non_ascii_idempotency_key(api, key):
    answer = api.post(
        "/messages/", data=b"a,b\n", params=SEND, headers={"Idempotency-Key": key.encode("latin-1")}
    )
    assert "Idempotency-Key" in _problem(answer, 400)["errors"]
    assert not Message.objects.exists() and not _stored_files()
