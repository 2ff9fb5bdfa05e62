"""Enqueuing through one broker a process (ORM here, Redis in make test's second phase)."""

from __future__ import annotations

import os

import pytest

from portal.lib import taskqueue
from portal.messaging.enqueue import enqueue_poll

pytestmark = pytest.mark.django_db


def test_tasks_go_on_the_queue_through_one_broker(task_queue, monkeypatch):
    made = []
    real = taskqueue.get_broker
    monkeypatch.setattr(taskqueue, "get_broker", lambda: made.append(1) or real())
    monkeypatch.setattr(taskqueue, "_brokers", {})
    first, second = enqueue_poll(1), enqueue_poll(2)
    assert first != second and task_queue.queue_size() == 2
    assert len(made) == 1 and taskqueue.broker() is taskqueue.broker()


def test_a_forked_child_makes_its_own(monkeypatch):
    monkeypatch.setattr(taskqueue, "_brokers", {})
    parent = taskqueue.broker()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as a child after a fork sees it
    child = taskqueue.broker()
    assert child is not parent and list(taskqueue._brokers) == [-1]
