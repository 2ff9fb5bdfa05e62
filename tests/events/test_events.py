"""Events: raised in the caller's transaction, published in commit order, consumed once each."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from portal.events import consumers
from portal.events.kinds import KINDS
from portal.events.models import Event, EventCursor, EventHead
from portal.events.services import (
    EventRejected,
    consumer_run,
    event_emit,
    events_dispatch,
    events_publish,
    events_purge,
    problem_is_open,
    problem_raise,
    problem_resolve,
)

pytestmark = pytest.mark.django_db


def emit(kind="message.received", **kwargs):
    kwargs.setdefault("severity", "info")
    kwargs.setdefault("summary", f"{kind} happened")
    return event_emit(kind=kind, **kwargs)


@pytest.fixture
def consumer():
    """A registered consumer that records what it was handed (and may be told to fail)."""
    seen: list[int] = []
    state = {"fail": set()}

    def handler(event):
        if event.seq in state["fail"] or "all" in state["fail"]:
            # Written first, so the test can see the failed attempt's writes roll back.
            EventCursor.objects.create(name=f"probe-{event.seq}")
            raise RuntimeError(f"refused {event.seq}")
        seen.append(event.seq)

    events_publish()
    consumer_run(consumer=consumers.register("test-consumer", handler))  # its cursor, at the head
    yield SimpleNamespace(seen=seen, state=state)
    consumers.unregister("test-consumer")


def test_it_exists_only_if_the_callers_transaction_commits():
    with pytest.raises(RuntimeError), transaction.atomic():
        emit()
        raise RuntimeError("the change failed")
    assert not Event.objects.exists()
    emit()
    assert Event.objects.count() == 1


def test_it_refuses_an_unknown_kind_or_severity():
    with pytest.raises(EventRejected, match="Unknown event kind"):
        emit("message.exploded")
    with pytest.raises(EventRejected, match="severity"):
        emit(severity="apocalyptic")


def test_it_publishes_in_id_order_once_each():
    first, second = emit(), emit()
    assert first.seq is None
    assert events_publish() == 2
    third = emit()
    assert events_publish() == 1
    assert events_publish() == 0
    seqs = dict(Event.objects.values_list("pk", "seq"))
    assert seqs[first.pk] < seqs[second.pk] < seqs[third.pk]
    assert EventHead.objects.get().last_seq == seqs[third.pk]


def test_it_publishes_after_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = emit()
    event.refresh_from_db()
    assert event.seq is not None and event.published_at is not None


def test_it_bounds_the_data_and_summary():
    event = emit(summary="x\n" * 600, data={"text": "y" * 5000, "deep": {"a": {"b": {"c": [1]}}}})
    assert len(event.summary) == 500 and "\n" not in event.summary
    assert len(event.data["text"]) == 1000
    assert event.data["deep"]["a"]["b"] == "{'c': [1]}"
    assert emit(data={f"k{i}": "z" * 1000 for i in range(40)}).data == {"truncated": True}


def test_it_hands_each_event_to_a_consumer_once(consumer):
    emit(), emit("message.ndr", severity="error")
    assert events_dispatch()["test-consumer"] == 2
    assert events_dispatch()["test-consumer"] == 0
    emit()
    events_dispatch()
    assert len(consumer.seen) == len(set(consumer.seen)) == 3
    assert consumer.seen == sorted(consumer.seen)


def test_a_new_consumer_starts_at_the_newest_event():
    emit()
    events_publish()
    late = consumers.register("late", lambda event: None)
    try:
        assert consumer_run(consumer=late) == 0
        emit()
        events_publish()
        assert consumer_run(consumer=late) == 1
    finally:
        consumers.unregister("late")


def test_it_hands_a_consumer_only_its_kinds():
    handled = []
    only = consumers.register("ndr-only", handled.append, kinds={"message.ndr"})
    try:
        consumer_run(consumer=only)
        emit(), emit("message.ndr", severity="error"), emit()
        events_dispatch()
        assert [e.kind for e in handled] == ["message.ndr"]
        assert EventCursor.objects.get(name="ndr-only").last_seq == EventHead.objects.get().last_seq
    finally:
        consumers.unregister("ndr-only")


def test_it_refuses_to_register_unknown_kinds():
    with pytest.raises(ValueError, match="message.exploded"):
        consumers.register("bad", print, kinds={"message.exploded"})


def test_a_failing_handler_is_retried_later_and_its_writes_roll_back(consumer):
    emit()
    events_publish()
    failing = Event.objects.get().seq
    consumer.state["fail"] = {failing}
    assert events_dispatch()["test-consumer"] == 0
    cursor = EventCursor.objects.get(name="test-consumer")
    assert cursor.failures == 1 and cursor.retry_at and f"refused {failing}" in cursor.last_error
    assert not EventCursor.objects.filter(name__startswith="probe-").exists()
    consumer.state["fail"] = set()
    assert events_dispatch()["test-consumer"] == 0  # not before its retry time
    assert events_dispatch(now=cursor.retry_at + timedelta(seconds=1))["test-consumer"] == 1
    assert consumer.seen == [failing]
    cursor.refresh_from_db()
    assert cursor.failures == 0 and cursor.last_error == "" and cursor.retry_at is None


def test_an_event_that_always_fails_is_skipped_and_the_rest_go_on(consumer, settings):
    settings.EVENTS_HANDLER_MAX_ATTEMPTS = 3
    emit(), emit()
    events_publish()
    bad, good = Event.objects.order_by("seq").values_list("seq", flat=True)
    consumer.state["fail"] = {bad}
    now = timezone.now()
    for attempt in range(3):
        events_dispatch(now=now + timedelta(hours=2 * attempt))
    cursor = EventCursor.objects.get(name="test-consumer")
    assert [entry["seq"] for entry in cursor.skipped] == [bad]
    assert f"refused {bad}" in cursor.skipped[0]["error"]
    assert consumer.seen == [good]


def test_one_problem_raises_once_and_resolves_once():
    key = "mailbox:1:poll"
    raise_it = {"kind": "mailbox.poll_failing", "severity": "error", "summary": "failing"}
    fix_it = {"kind": "mailbox.poll_recovered", "severity": "info", "summary": "recovered"}
    assert problem_resolve(problem_key=key, **fix_it) is None
    assert problem_raise(problem_key=key, **raise_it) is not None
    assert problem_raise(problem_key=key, **raise_it) is None
    assert problem_is_open(key)
    assert problem_resolve(problem_key=key, **fix_it).resolves
    assert problem_resolve(problem_key=key, **fix_it) is None
    assert not problem_is_open(key)


def test_it_purges_old_events_but_keeps_open_problems_and_unread_ones(consumer, settings):
    settings.EVENTS_RETENTION_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    plain = emit()
    still_open = emit("mailbox.poll_failing", severity="error", problem_key="mailbox:1:poll")
    raised = emit("mailbox.handshake_failing", severity="error", problem_key="mailbox:1:hs")
    fixed = emit(
        "mailbox.handshake_recovered", severity="info", problem_key="mailbox:1:hs", resolves=True
    )
    events_dispatch()
    unread = emit()
    events_publish()
    recent = emit()
    events_publish()
    Event.objects.exclude(pk=recent.pk).update(created_at=old)
    assert events_purge() == 3
    left = set(Event.objects.values_list("pk", flat=True))
    assert left == {still_open.pk, unread.pk, recent.pk}
    assert {plain.pk, raised.pk, fixed.pk}.isdisjoint(left)


def test_the_readme_lists_every_kind():
    readme = (Path(__file__).parents[2] / "portal/events/README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_.]+)` \|", readme, flags=re.MULTILINE))
    assert listed == set(KINDS)
