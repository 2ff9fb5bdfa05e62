"""A transaction that commits late never has its event skipped by a consumer (PostgreSQL).

SQLite takes its write lock up front (IMMEDIATE), so two writers never overlap there; on
PostgreSQL they do: the event with the lower id may commit after a consumer has read past a higher
one. Publishing gives seqs in commit order, so the consumer still reads it.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from portal.events import consumers
from portal.events.models import Event
from portal.events.services import event_emit, events_dispatch, events_publish

pytestmark = [pytest.mark.scaleout, pytest.mark.django_db(transaction=True)]


def test_it_never_misses_an_event_that_commits_late():
    if connection.vendor != "postgresql":
        pytest.fail("This test needs PostgreSQL: run it through tests.services (make test).")
    seen = []
    consumers.register("late-commit", lambda event: seen.append(event.summary))
    try:
        events_dispatch()
        inserted, release = threading.Event(), threading.Event()

        def slow_writer():
            try:
                with transaction.atomic():
                    event_emit(kind="message.received", severity="info", summary="late")
                    inserted.set()
                    release.wait(30)
            finally:
                connection.close()

        writer = threading.Thread(target=slow_writer)
        writer.start()
        assert inserted.wait(30)
        event_emit(kind="message.received", severity="info", summary="early")
        events_dispatch()
        assert seen == ["early"]
        release.set()
        writer.join(30)
        events_dispatch()
        assert seen == ["early", "late"]
        late = Event.objects.get(summary="late")
        assert late.pk < Event.objects.get(summary="early").pk
        assert late.seq > Event.objects.get(summary="early").seq
        assert events_publish() == 0
    finally:
        consumers.unregister("late-commit")
