"""Auditors' pages: the trail browser, a record's detail, the message log's extra filters."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import SECRET_MASK, Actor, record
from portal.mailboxes.models import Environment
from portal.messaging.models import Direction
from tests.accounts.access import (
    PERSONAS,
    as_persona,
    assert_access,
    assert_no_inline_code,
    make_message,
)
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

AUDITORS = {"auditor_user", "superuser"}


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


def a_record(**kwargs) -> AuditRecord:
    kwargs.setdefault("action", "test.event")
    kwargs.setdefault("actor", Actor(kind="system", label=kwargs.pop("actor_label", "tester")))
    return record(**kwargs)


CASES = [
    ("trail", lambda r: reverse("audit:trail")),
    ("detail", lambda r: reverse("audit:detail", args=[r.seq])),
    ("export", lambda r: reverse("audit:export")),
    ("message_export", lambda r: reverse("messaging:export")),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("name", "url"), CASES, ids=[c[0] for c in CASES])
def test_it_checks_access_for_every_persona(client, request, persona, name, url):
    entry = a_record()
    as_persona(client, request, persona)
    response = client.get(url(entry))
    assert_access(response, persona, AUDITORS)
    response.close()


@pytest.mark.parametrize(("name", "url"), CASES, ids=[c[0] for c in CASES])
def test_it_refuses_anything_but_reading(client, auditor_user, name, url):
    entry = a_record()
    client.force_login(auditor_user)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(url(entry)).status_code == 405
    assert AuditRecord.objects.filter(pk=entry.pk, detail=entry.detail).exists()


def test_it_shows_audit_in_the_navigation_of_those_who_may_read_it(
    client, auditor_user, admin_user
):
    client.force_login(auditor_user)
    labels = [item["label"] for item in client.get(reverse("audit:trail")).context["nav_items"]]
    assert "Audit" in labels
    client.force_login(admin_user)
    labels = [item["label"] for item in client.get(reverse("dashboard:home")).context["nav_items"]]
    assert "Audit" not in labels


# The trail


def listed(response) -> list[int]:
    return [entry.seq for entry in response.context["page"].items]


def test_it_lists_records_newest_first_with_who_when_and_where(client, auditor_user, mailbox):
    client.force_login(auditor_user)  # itself a sign-in record
    entry = a_record(
        action="mailbox.disabled",
        actor=Actor(
            kind="person", label=auditor_user.username, user=auditor_user, ip="203.0.113.9"
        ),
        obj=mailbox,
        reason="Decommissioned by the trust",
    )
    response = client.get(reverse("audit:trail"))
    seqs = listed(response)
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == entry.seq
    html = response.content.decode()
    for text in ("mailbox.disabled", "203.0.113.9", "Decommissioned by the trust", "X26ABC1"):
        assert text in html
    assert reverse("audit:detail", args=[entry.seq]) in html
    assert_no_inline_code(html)


def test_it_filters_by_actor_action_and_object(client, auditor_user, mailbox):
    other = make_mailbox("X26ABC2")
    by_alice = a_record(actor_label="alice", action="mailbox.update", obj=mailbox)
    by_bob = a_record(actor_label="bob", action="mailbox.update", obj=other)
    download = a_record(actor_label="alice", action="message.payload_downloaded")
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    assert listed(client.get(url, {"actor": "alice"})) == [download.seq, by_alice.seq]
    assert listed(client.get(url, {"action": "message.payload_downloaded"})) == [download.seq]
    by_type = listed(client.get(url, {"object_type": "mailboxes.mailbox"}))
    assert {by_alice.seq, by_bob.seq} <= set(by_type) and download.seq not in by_type
    assert listed(
        client.get(
            url,
            {
                "object_type": "mailboxes.mailbox",
                "object_id": str(other.pk),
                "action": "mailbox.update",
            },
        )
    ) == [by_bob.seq]
    both = listed(client.get(url, {"actor": "alice", "action": "mailbox.update"}))
    assert both == [by_alice.seq]


def test_it_finds_an_actor_in_any_case_and_by_the_start_of_the_label(client, auditor_user):
    alice = a_record(actor_label="Alice.Smith")
    worker = a_record(actor_label="worker vm:30377")
    other_worker = a_record(actor_label="worker web-2:4002")
    a_record(actor_label="bob")
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    assert listed(client.get(url, {"actor": "alice.smith"})) == [alice.seq]
    assert listed(client.get(url, {"actor": "ALI"})) == [alice.seq]
    assert listed(client.get(url, {"actor": "Worker  VM"})) == [worker.seq]
    html = client.get(url, {"actor": "worker"}).content.decode()
    assert "2 records match these filters." in html
    assert listed(client.get(url, {"actor": "worker"})) == [other_worker.seq, worker.seq]
    assert listed(client.get(url, {"actor": "nobody"})) == []


def test_it_pages_several_actors_newest_first_across_their_walks(client, auditor_user, monkeypatch):
    monkeypatch.setattr("portal.audit.views.PAGE_SIZE", 3)
    mine = [a_record(actor_label=label) for label in ["ann", "Anna", "bob", "ann", "ANNA"] * 2]
    wanted = [entry.seq for entry in reversed(mine) if entry.actor_label != "bob"]
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    response, seen = client.get(url, {"actor": "ann"}), []
    seen += listed(response)
    while response.context["page"].next_cursor:
        cursor = response.context["page"].next_cursor
        response = client.get(url, {"actor": "ann", "after": cursor})
        seen += listed(response)
    assert seen == wanted
    back = client.get(url, {"actor": "ann", "before": response.context["page"].prev_cursor})
    assert listed(back) == wanted[3:6]
    # Past ACTOR_KEYS matching actors the filter is one range: the same records.
    monkeypatch.setattr("portal.audit.forms.ACTOR_KEYS", 1)
    assert listed(client.get(url, {"actor": "ann"})) == wanted[:3]


def test_it_asks_for_the_type_of_an_object_id(client, auditor_user):
    client.force_login(auditor_user)
    response = client.get(reverse("audit:trail"), {"object_id": "7"})
    assert "Choose the object type for this object id." in response.content.decode()


def sealed_on(day: datetime, **kwargs) -> AuditRecord:
    """A record sealed at a given moment (the clock is moved only while it is sealed)."""
    from unittest import mock

    with mock.patch("portal.audit.services.timezone.now", return_value=day):
        return a_record(**kwargs)


def test_it_filters_by_date_range_in_local_days(client, auditor_user):
    # Next year: a record is never dated before the one it follows, so the days lie ahead.
    london, year = timezone.get_current_timezone(), timezone.now().year + 1
    days = [datetime(year, 3, d, 23, 30, tzinfo=london) for d in (1, 2, 3)]
    first, second, third = (sealed_on(day, detail=str(day.day)) for day in days)
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    only_second = {"date_from": f"{year}-03-02", "date_to": f"{year}-03-02"}
    assert listed(client.get(url, only_second)) == [second.seq]
    assert listed(client.get(url, {"date_to": f"{year}-03-02"}))[:2] == [second.seq, first.seq]
    from_second = listed(client.get(url, {"date_from": f"{year}-03-02"}))
    assert third.seq in from_second and second.seq in from_second and first.seq not in from_second
    assert listed(client.get(url, {"date_from": f"{year + 1}-01-01"})) == []
    assert listed(client.get(url, {"date_to": "2020-01-01"})) == []
    bad = client.get(url, {"date_from": f"{year}-03-03", "date_to": f"{year}-03-01"})
    assert "The end date is before the start date." in bad.content.decode()


def test_a_date_range_holds_every_record_sealed_together_at_its_edges(client, auditor_user):
    # Records sealed together share one time: a day starting or ending with them has them all.
    from unittest import mock

    from portal.audit.services import sealed_together

    london, year = timezone.get_current_timezone(), timezone.now().year + 2
    moments = [datetime(year, 5, d, 12, 0, tzinfo=london) for d in (1, 2, 3)]
    batches = []
    for moment in moments:
        with mock.patch("portal.audit.services.timezone.now", return_value=moment):
            with sealed_together():
                batch = [a_record(detail=f"{moment.day}-{n}") for n in range(6)]
        batches.append(sorted(entry.seq for entry in batch))
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    day = {"date_from": f"{year}-05-02", "date_to": f"{year}-05-02"}
    assert sorted(listed(client.get(url, day))) == batches[1]
    since = listed(client.get(url, {"date_from": f"{year}-05-02"}))
    assert set(batches[1] + batches[2]) <= set(since) and not set(batches[0]) & set(since)
    until = listed(client.get(url, {"date_to": f"{year}-05-02"}))
    assert set(batches[0] + batches[1]) <= set(until) and not set(batches[2]) & set(until)


def test_it_pages_by_seq_and_never_counts_the_whole_trail(client, auditor_user):
    entries = [a_record(detail=str(i)) for i in range(120)]
    client.force_login(auditor_user)
    url = reverse("audit:trail")
    seen = []
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"action": "test.event"})
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 1001" in sql for sql in counts)  # the result count, bounded
    assert "120 records match these filters." in response.content.decode()
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    seen += listed(response)
    while response.context["page"].next_cursor:
        cursor = response.context["page"].next_cursor
        response = client.get(url, {"action": "test.event", "after": cursor})
        seen += listed(response)
    assert seen == [e.seq for e in reversed(entries)]
    back = client.get(url, {"action": "test.event", "before": response.context["page"].prev_cursor})
    assert listed(back) == [e.seq for e in reversed(entries)][50:100]
    assert b'rel="next"' in back.content and b'rel="prev"' in back.content
    assert len(listed(client.get(url, {"after": "not-a-number"}))) == 50


def populate_trail(n: int) -> None:
    for i in range(n):
        a_record(
            actor_label=f"user{i % 3}",
            action="mailbox.update",
            object_type="mailboxes.mailbox",
            object_id=str(i % 5),
            detail=str(i),
        )


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"actor": "user1"},
        {"action": "mailbox.update"},
        {"object_type": "mailboxes.mailbox", "object_id": "1"},
        {"date_from": "2020-01-01", "date_to": "2099-01-01"},
    ],
    ids=["all", "actor", "action", "object", "dates"],
)
def test_the_trail_takes_a_constant_number_of_queries(
    client, auditor_user, django_assert_num_queries, query
):
    client.force_login(auditor_user)
    populate_trail(3)
    url = reverse("audit:trail")
    with CaptureQueriesContext(connection) as few:
        client.get(url, query)
    populate_trail(150)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url, query)
    assert len(listed(response)) == 50 or query.get("object_id")


# One record


def test_it_shows_a_records_changes_before_and_after_with_secrets_masked(client, auditor_user):
    mailbox = make_mailbox("X26ABC1", password="first-secret", name="Old name")
    mailbox.password, mailbox.name = "second-secret", "New name"
    mailbox.save()
    update = AuditRecord.objects.for_object(mailbox).get(action="mailbox.update")
    client.force_login(auditor_user)
    response = client.get(reverse("audit:detail", args=[update.seq]))
    html = response.content.decode()
    rows = {row["field"]: row for row in response.context["changes"]}
    assert (rows["name"]["before"], rows["name"]["after"]) == ("Old name", "New name")
    assert rows["password"]["before"] == rows["password"]["after"] == SECRET_MASK
    assert "first-secret" not in html and "second-secret" not in html
    assert reverse("mailboxes:detail", args=[mailbox.pk]) in html
    assert update.hash in html and update.prev_hash in html
    assert f"object_type=mailboxes.mailbox&amp;object_id={mailbox.pk}" in html
    assert_no_inline_code(html)


def test_it_shows_a_reason_and_detail_and_says_when_nothing_changed(client, auditor_user):
    entry = a_record(
        action="onboarding.gate_overridden",
        reason="Go-live approved by NHSE",
        detail="line one\nline two",
    )
    client.force_login(auditor_user)
    html = client.get(reverse("audit:detail", args=[entry.seq])).content.decode()
    assert "Go-live approved by NHSE" in html and "line one\nline two" in html
    assert "This record holds no field changes" in html


def test_it_returns_404_for_an_unknown_record(client, auditor_user):
    client.force_login(auditor_user)
    assert client.get(reverse("audit:detail", args=[999999])).status_code == 404


# Message detail: its audit records


def test_the_message_page_shows_its_audit_records_to_auditors(client, auditor_user, mailbox):
    message = make_message(mailbox, payload=None)
    queued = a_record(action="message.queued", obj=message, actor_label="alice-admin")
    a_record(action="message.queued", obj=make_message(mailbox, payload=None))  # another message
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:detail", args=[message.pk]))
    assert [r.seq for r in response.context["audit_records"]] == [queued.seq]
    html = response.content.decode()
    assert "Audit records" in html and reverse("audit:detail", args=[queued.seq]) in html
    assert f"object_type=messaging.message&amp;object_id={message.pk}" in html
    assert_no_inline_code(html)


def test_the_message_page_hides_audit_records_from_roles_without_the_trail(
    client, admin_user, mailbox
):
    message = make_message(mailbox, payload=None)
    a_record(action="message.queued", obj=message)
    client.force_login(admin_user)
    response = client.get(reverse("messaging:detail", args=[message.pk]))
    assert response.context["audit_records"] is None
    assert "Audit records" not in response.content.decode()


def test_the_message_page_takes_the_same_queries_with_many_audit_records(
    client, auditor_user, mailbox, django_assert_num_queries
):
    message = make_message(mailbox, payload=None)
    a_record(action="message.queued", obj=message)
    client.force_login(auditor_user)
    url = reverse("messaging:detail", args=[message.pk])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(30):
        a_record(action="message.tracked", obj=message)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)


# The message log: filters the auditors need beyond the message list's


def listed_messages(response) -> list[int]:
    return [m.pk for m in response.context["page"].items]


def test_it_filters_the_message_log_by_environment_sender_and_recipient(
    client, auditor_user, mailbox
):
    live = make_mailbox("X26LIV1", environment=Environment.LIVE)
    in_live = make_message(live, payload=None, sender="X26ABC9")
    outbound = make_message(
        mailbox, payload=None, direction=Direction.OUTBOUND, recipient="X26ABC7"
    )
    make_message(mailbox, payload=None, sender="X26ABC8")
    client.force_login(auditor_user)
    url = reverse("messaging:list")
    assert listed_messages(client.get(url, {"environment": "live"})) == [in_live.pk]
    assert listed_messages(client.get(url, {"sender": "x26abc9"})) == [in_live.pk]
    assert listed_messages(client.get(url, {"recipient": "X26ABC7"})) == [outbound.pk]
    assert listed_messages(client.get(url, {"environment": "live", "mailbox": mailbox.pk})) == []
    assert listed_messages(client.get(url, {"environment": "deployment"})) == []
    html = client.get(url).content.decode()
    for label in ("Environment", "Sender", "Recipient"):
        assert f">{label}</label>" in html


def test_it_pages_an_environment_across_its_mailboxes_in_order(client, auditor_user):
    boxes = [make_mailbox(f"X26LIV{n}", environment=Environment.LIVE) for n in range(3)]
    make_mailbox("X26INT1", environment=Environment.INTEGRATION)
    start = timezone.now()
    made = [
        make_message(boxes[i % 3], payload=None, created_at=start - timedelta(seconds=i // 2))
        for i in range(70)
    ]  # pairs share a created_at across mailboxes: the id breaks the tie
    expected = [m.pk for m in sorted(made, key=lambda m: (m.created_at, m.pk), reverse=True)]
    client.force_login(auditor_user)
    url = reverse("messaging:list")
    response = client.get(url, {"environment": "live"})
    seen = listed_messages(response)
    while response.context["page"].next_cursor:
        response = client.get(
            url, {"environment": "live", "after": response.context["page"].next_cursor}
        )
        seen += listed_messages(response)
    assert seen == expected
    back = client.get(url, {"environment": "live", "before": response.context["page"].prev_cursor})
    assert listed_messages(back) == expected[25:50]


def test_the_message_log_takes_a_constant_number_of_queries_per_filter(
    client, auditor_user, django_assert_num_queries
):
    client.force_login(auditor_user)
    boxes = [make_mailbox(f"X26LIV{n}", environment=Environment.LIVE) for n in range(2)]
    url = reverse("messaging:list")
    for query in ({"environment": "live"}, {"sender": "X26ABC2"}, {"recipient": "X26LIV0"}):
        make_message(boxes[0], payload=None)
        with CaptureQueriesContext(connection) as few:
            client.get(url, query)
        for i in range(30):
            make_message(boxes[i % 2], payload=None)
        with django_assert_num_queries(len(few.captured_queries)):
            client.get(url, query)
