"""Putting a task on django-q2's queue through one broker a process.

`django_q.tasks.async_task` builds a broker for every call unless it is handed one: on Redis a new
client, connection pool and TCP connection (with its handshake) for each task enqueued, about a
seventh of the CPU a queued message cost the sending side in a burst (`make bench` throughput).
`enqueue` hands it this process's broker, made once (again in a forked child: a connection is
never shared across a fork). Redis' client and django-q2's ORM broker are both safe to share
between threads (the ORM broker queries through each thread's own database connection).
"""

from __future__ import annotations

import os
import threading

from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

_brokers: dict[int, Broker] = {}
_lock = threading.Lock()


def broker() -> Broker:
    """This process's broker, made on first use."""
    pid = os.getpid()
    made = _brokers.get(pid)
    if made is None:
        with _lock:
            made = _brokers.get(pid)
            if made is None:
                _brokers.clear()  # a parent's, inherited through a fork
                made = _brokers[pid] = get_broker()
    return made


def enqueue(func: str, *args, **kwargs) -> str:
    """`async_task(func, *args, **kwargs)` through this process's broker; the task's id."""
    return async_task(func, *args, broker=broker(), **kwargs)
