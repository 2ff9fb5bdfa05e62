"""Who this worker is: one name for claims (outbox, poller, conformance) and for audit records.

`NEOMESH_WORKER_NAME` (settings.WORKER_NAME) names the node when the host name says nothing useful
(containers); the process id and thread tell workers on one node apart.
"""

from __future__ import annotations

import os
import queue
import socket
import threading

from django.conf import settings


def worker_host() -> str:
    """The node: `NEOMESH_WORKER_NAME`, else the host name."""
    return getattr(settings, "WORKER_NAME", "") or socket.gethostname()


def worker_name(*, thread: bool = True) -> str:
    """`host:pid:thread`, the owner written into a claim; `host:pid` without the thread."""
    name = f"{worker_host()}:{os.getpid()}"
    return f"{name}:{threading.get_ident()}" if thread else name


class ThreadsOnDemand:
    """Worker threads running `target`, started as work is handed out, up to `most`: a task with
    one thing to do starts one thread (and opens one MESH connection), not `most`.

    `grow(busy)` after each hand-out; `stop(todo)` puts one "no more" (None) for each thread started
    and waits for them all.
    """

    def __init__(self, target, name: str, most: int):
        self.target, self.name, self.most = target, name, most
        self.threads: list[threading.Thread] = []

    def grow(self, busy: int) -> None:
        """Enough threads for `busy` things handed out and not finished (never more than `most`)."""
        while len(self.threads) < min(self.most, busy):
            thread = threading.Thread(
                target=self.target, name=f"{self.name}-{len(self.threads)}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def stop(self, todo: queue.Queue) -> None:
        for _ in self.threads:
            todo.put(None)  # one "no more" each: every thread takes exactly one
        for thread in self.threads:
            thread.join()


def take_finished(done: queue.Queue, *, at_least: int = 0) -> list:
    """What worker threads have put on `done`: waits for `at_least` items, then takes the rest
    there is without waiting (so one transaction can record a batch of them)."""
    finished = [done.get() for _ in range(at_least)]
    while True:
        try:
            finished.append(done.get_nowait())
        except queue.Empty:
            return finished
