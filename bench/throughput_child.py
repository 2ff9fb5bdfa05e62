"""One throughput run (see bench/throughput.py): migrate, seed, start clusters, queue, wait, report.

Runs with DATABASE_URL (and REDIS_URL), NEOMESH_VAR_DIR, PAYLOAD_ROOT and MESH_SANDBOX_URL set by
the parent; prints one JSON line with the result.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = b"NHS,NUMBER,RESULT\n" * 5  # ~100 bytes: a small message


class Cluster:
    def __init__(self, name: str, workdir: Path):
        self.log_path = workdir / f"cluster-{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, "Q_WORKERS": "1", "LOG_LEVEL": "INFO"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def running(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"qcluster exited early:\n{self.log_path.read_text()[-2000:]}")
        return "running" in self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def _descendants(pid: int) -> list[int]:
    """The process and all its children, grandchildren... (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(clusters: list[Cluster]) -> float:
    """CPU time the clusters used so far: live processes' own, and the reaped ones' via their parent."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for cluster in clusters:
        for pid in _descendants(cluster.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / tick


def peak_rss_mb(clusters: list[Cluster]) -> float:
    """The largest peak resident set (VmHWM) of any process of the clusters, in MB."""
    peak = 0
    for cluster in clusters:
        for pid in _descendants(cluster.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


def _wait_running(clusters: list[Cluster], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(cluster.running() for cluster in clusters):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker clusters did not start within a minute")
        time.sleep(0.2)


def queue_messages(sender, messages: int, queuers: int) -> None:
    """Queue the messages from `queuers` threads at once, as that many web or API requests."""
    from django.db import connection

    from portal.audit.services import Actor
    from portal.messaging.services import message_queue_send

    def queue_share(first: int) -> None:
        try:
            for n in range(first, messages, queuers):
                message_queue_send(
                    mailbox=sender,
                    recipient="X26ABC2",
                    workflow_id="TEST_WORKFLOW",
                    source=io.BytesIO(PAYLOAD),
                    size=len(PAYLOAD),
                    filename=f"result-{n}.csv",
                    actor=Actor.command(),
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=queue_share, args=(n,)) for n in range(queuers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class _Pending:
    """One task of each kind waiting or running at a time, enqueued again once it has run.

    Enqueuing a poll and a sweep four times a second whatever was pending (as this benchmark did
    before) made the workers spend their time on hundreds of tasks that found a poll running or
    nothing to send, each with its own round trips through the task queue: the figure measured the
    queue's overhead more than the transfers.
    """

    STUCK_S = 60  # a task lost (a worker killed) is enqueued again after this long

    def __init__(self):
        self.tasks: dict[str, tuple[str, float]] = {}

    def keep(self, name: str, *args) -> None:
        from django_q.models import Task
        from django_q.tasks import async_task

        waiting = self.tasks.get(name)
        if waiting is not None:
            task_id, since = waiting
            ran = Task.objects.filter(id=task_id).exists()
            if not ran and time.monotonic() - since < self.STUCK_S:
                return
        self.tasks[name] = (async_task(name, *args), time.monotonic())


def _received(recipient, messages: int) -> dict:
    """Whether every message arrived once and was acknowledged: rows, distinct MESH ids, acks."""
    from portal.messaging.models import Message, Status

    inbound = Message.objects.inbound().filter(mailbox=recipient)
    acknowledged = inbound.filter(status=Status.ACKNOWLEDGED).count()
    rows, distinct = inbound.count(), inbound.values("mesh_message_id").distinct().count()
    return {
        "complete": acknowledged == messages and rows == distinct == messages,
        "acknowledged": acknowledged,
        "received_rows": rows,
        "distinct": distinct,
    }


def measure(messages: int, clusters: list[Cluster], deadline: float, queuers: int = 1) -> dict:
    from portal.mailboxes.models import Mailbox
    from portal.messaging.models import Message, Status

    sender, recipient = (Mailbox.objects.get(mailbox_id=m) for m in ("X26ABC1", "X26ABC2"))
    _wait_running(clusters)
    started = time.monotonic()
    peak, cpu_before = peak_rss_mb(clusters), cpu_seconds(clusters)
    queued_at: list[float] = []

    def queue_all() -> None:
        queue_messages(sender, messages, queuers)
        queued_at.append(time.monotonic() - started)

    # Queued while the workers run and the polls come, as messages arrive in real life.
    queuing = threading.Thread(target=queue_all)
    queuing.start()
    accepted_s = None
    sent = Message.objects.outbound().filter(status__in=[Status.ACCEPTED, Status.ACKNOWLEDGED])
    arrived = Message.objects.inbound().filter(mailbox=recipient, status=Status.ACKNOWLEDGED)
    pending = _Pending()
    while time.monotonic() - started < deadline:
        # What the schedules do every minute, as soon as the last one has run: a poll finds what
        # arrived since the last, a sweep sends what no send task took.
        pending.keep("portal.messaging.tasks.poll_mailbox", recipient.pk)
        pending.keep("portal.messaging.tasks.sweep_outbox")
        if accepted_s is None and sent.count() == messages:
            accepted_s = time.monotonic() - started
        peak = max(peak, peak_rss_mb(clusters))
        if arrived.count() == messages:
            break
        time.sleep(0.25)
    done_s = time.monotonic() - started
    queuing.join()
    queued_s = queued_at[0] if queued_at else done_s
    return {
        "workers": len(clusters),
        "messages": messages,
        **_received(recipient, messages),
        "queued_s": queued_s,
        "accepted_s": accepted_s or done_s,
        "done_s": done_s,
        "rate": messages / done_s,
        "accepted_rate": messages / (accepted_s or done_s),
        "peak_rss_mb": max(peak, peak_rss_mb(clusters)),
        "worker_cpu_ms_per_message": (cpu_seconds(clusters) - cpu_before) * 1000 / messages,
    }


def measure_backlog(messages: int, start_clusters, deadline: float, queuers: int) -> dict:
    """A backlog after an outage: the messages are queued while no worker runs, then the workers
    start and send them all (no poll meanwhile), then one poll receives them all.

    Each side's rate is the one a backlog drains at: the outbox's, from the workers' start until
    MESH accepted the last message, and the inbox's, from the poll's start until the last message
    was acknowledged. The schedule's minutely poll of due mailboxes is removed first, so that only
    the one poll receives.
    """
    from django_q.models import Schedule
    from django_q.tasks import async_task

    from portal.mailboxes.models import Mailbox
    from portal.messaging.models import Message, Status

    Schedule.objects.filter(func="portal.messaging.tasks.poll_due").delete()
    sender, recipient = (Mailbox.objects.get(mailbox_id=m) for m in ("X26ABC1", "X26ABC2"))
    queue_messages(sender, messages, queuers)
    clusters = start_clusters()
    _wait_running(clusters)
    cpu_before = cpu_seconds(clusters)
    started = time.monotonic()
    peak = 0.0

    def wait_until(done) -> float:
        """Seconds from now until `done()`, sampling the workers' peak memory meanwhile."""
        nonlocal peak
        since = time.monotonic()
        while not done() and time.monotonic() - started < deadline:
            peak = max(peak, peak_rss_mb(clusters))
            time.sleep(0.1)
        return time.monotonic() - since

    async_task("portal.messaging.tasks.sweep_outbox")  # as the schedule does every minute
    sent = Message.objects.outbound().filter(status__in=[Status.ACCEPTED, Status.ACKNOWLEDGED])
    sent_s = wait_until(lambda: sent.count() >= messages)
    cpu_sent = cpu_seconds(clusters)
    async_task("portal.messaging.tasks.poll_mailbox", recipient.pk)
    arrived = Message.objects.inbound().filter(mailbox=recipient, status=Status.ACKNOWLEDGED)
    received_s = wait_until(lambda: arrived.count() >= messages)
    return {
        "workers": len(clusters),
        "messages": messages,
        "backlog": True,
        **_received(recipient, messages),
        "sent_s": sent_s,
        "received_s": received_s,
        "send_rate": messages / sent_s,
        "receive_rate": messages / received_s,
        "peak_rss_mb": max(peak, peak_rss_mb(clusters)),
        "send_cpu_ms_per_message": (cpu_sent - cpu_before) * 1000 / messages,
        "receive_cpu_ms_per_message": (cpu_seconds(clusters) - cpu_sent) * 1000 / messages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput_child")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--clusters", type=int, required=True)
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--queuers", type=int, default=1)
    parser.add_argument("--backlog", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", stdout=io.StringIO())
    clusters: list[Cluster] = []

    def start_clusters() -> list[Cluster]:
        clusters.extend(Cluster(str(n), args.workdir) for n in range(args.clusters))
        return clusters

    try:
        if args.backlog:
            result = measure_backlog(args.messages, start_clusters, args.deadline, args.queuers)
        else:
            result = measure(args.messages, start_clusters(), args.deadline, args.queuers)
    finally:
        for cluster in clusters:
            cluster.stop()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
