"""Several messages at once inside one claim: polls and sends through a proxy that holds each MESH
request for a while (tests.peers.proxy), so that work overlaps as it does against live MESH.

The kill test polls in a separate process and kills it (SIGKILL) while all its receiver threads
wait on MESH, some messages stored, the rest not yet: the next poll must store and acknowledge
every message exactly once and lose none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.db.models import Count
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import mesh_client
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, MessageEvent, Status
from tests.factories import make_mailbox
from tests.peers.proxy import LatencyProxy

from .helpers import queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]
ROOT = Path(__file__).resolve().parents[2]
Kind = MessageEvent.Kind


def _once_each(kind: str, count: int) -> None:
    events = MessageEvent.objects.filter(kind=kind)
    assert events.count() == count
    assert not events.values("message").annotate(n=Count("id")).filter(n__gt=1).exists()


def _audited_once_each(action: str, count: int) -> None:
    records = AuditRecord.objects.filter(action=action)
    assert records.count() == count
    assert records.values("object_id").distinct().count() == count


def test_it_sends_a_mailboxs_due_messages_several_at_once_each_exactly_once(sandbox, settings):
    settings.OUTBOX_CONCURRENCY = 4
    with LatencyProxy(sandbox.url, delay_ms=50) as proxy:
        sender = make_mailbox("X26ABC1", base_url=proxy.url)
        messages = [queue(sender, f"message {n}\n".encode()) for n in range(12)]
        outcome = outbox.outbox_send_with_due(message_id=messages[0].pk)
        # A task queued for one of them later finds it sent and does nothing.
        assert outbox.outbox_send_with_due(message_id=messages[5].pk) == {"sent": 0}

    assert outcome == {"sent": 12}
    assert proxy.peak_in_flight >= 2  # sends overlapped
    assert Message.objects.outbound().exclude(status=Status.ACCEPTED).count() == 0
    _once_each(Kind.CLAIMED, 12)
    _once_each(Kind.ACCEPTED, 12)
    _audited_once_each("message.accepted", 12)
    recipient = make_mailbox("X26ABC2", base_url=sandbox.url)
    with mesh_client(recipient) as client:
        waiting = list(client.iter_inbox())
    assert sorted(waiting) == sorted(Message.objects.values_list("mesh_message_id", flat=True))


def test_a_batch_claim_takes_only_queued_due_messages_no_other_worker_has(sandbox):
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    taken, later, free = (queue(sender, f"message {n}\n".encode()) for n in range(3))
    assert outbox.claim(taken.pk, "other-host:1") is not None
    Message.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    claimed = outbox.claim_batch([taken.pk, later.pk, free.pk], "this-host:1")
    assert [m.pk for m in claimed] == [free.pk]
    free.refresh_from_db()
    assert (free.status, free.claimed_by, free.attempts) == (Status.SENDING, "this-host:1", 1)
    taken.refresh_from_db()
    assert taken.claimed_by == "other-host:1"
    assert MessageEvent.objects.filter(kind=Kind.CLAIMED, message=free).count() == 1
    assert outbox.claim_batch([taken.pk, free.pk], "this-host:1") == []


def test_a_message_whose_claim_went_while_it_waited_for_a_sender_is_not_sent(
    sandbox, settings, monkeypatch
):
    settings.OUTBOX_CONCURRENCY = 2
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    messages = [queue(sender, f"message {n}\n".encode()) for n in range(6)]
    real_claim = outbox.claim_batch
    # Every message counts as having waited past a heartbeat, so each claim is checked first.
    monkeypatch.setattr(outbox, "HEARTBEAT_SECONDS", -1)

    def claim_then_lose_one(message_ids, worker):
        claimed = real_claim(message_ids, worker)
        if messages[3].pk in message_ids:
            # Released by a sweep meanwhile and claimed by another worker.
            Message.objects.filter(pk=messages[3].pk).update(claimed_by="other-host:1")
        return claimed

    monkeypatch.setattr(outbox, "claim_batch", claim_then_lose_one)
    assert outbox.outbox_send_with_due(message_id=messages[0].pk) == {"sent": 5}
    lost = Message.objects.get(pk=messages[3].pk)
    assert (lost.status, lost.claimed_by, lost.mesh_message_id) == (
        Status.SENDING,
        "other-host:1",
        None,
    )
    assert not MessageEvent.objects.filter(message=lost, kind=Kind.ACCEPTED).exists()
    accepted = Message.objects.outbound().filter(status=Status.ACCEPTED)
    assert accepted.count() == 5
    _once_each(Kind.ACCEPTED, 5)
    recipient = make_mailbox("X26ABC2", base_url=sandbox.url)
    with mesh_client(recipient) as client:
        waiting = list(client.iter_inbox())
    assert sorted(waiting) == sorted(accepted.values_list("mesh_message_id", flat=True))


def test_a_send_whose_failure_cannot_be_recorded_leaves_it_claimed_and_the_rest_go(
    sandbox, settings, monkeypatch
):
    settings.OUTBOX_CONCURRENCY = 2
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    messages = [queue(sender, f"message {n}\n".encode()) for n in range(5)]
    real_attempt = outbox._attempt

    def database_gone_for_one(message, *args, **kwargs):
        if message.pk == messages[2].pk:
            raise OperationalError("the database went away while recording the failure")
        return real_attempt(message, *args, **kwargs)

    monkeypatch.setattr(outbox, "_attempt", database_gone_for_one)
    assert outbox.outbox_send_with_due(message_id=messages[0].pk) == {"sent": 5}
    stuck = Message.objects.get(pk=messages[2].pk)
    assert (stuck.status, stuck.mesh_message_id) == (Status.SENDING, None)  # for the sweep
    assert Message.objects.outbound().filter(status=Status.ACCEPTED).count() == 4


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


POLL_IN_A_PROCESS = (
    "import sys, django; django.setup(); "
    "from portal.mailboxes.models import Mailbox; from portal.messaging import inbox; "
    "inbox.mailbox_poll(mailbox=Mailbox.objects.get(pk=int(sys.argv[1])))"
)


def test_a_worker_killed_in_a_concurrent_poll_loses_and_repeats_nothing(sandbox, settings):
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.fail("The kill test needs the test database in a file another process can open.")
    total, width = 40, 4
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    for n in range(total):
        outbox.message_send(message_id=queue(sender, f"result {n}\n".encode() * 3).pk)
    sent = dict(Message.objects.outbound().values_list("mesh_message_id", "payload_sha256"))
    assert len(sent) == total

    with LatencyProxy(sandbox.url, delay_ms=300) as proxy:
        recipient = make_mailbox("X26ABC2", base_url=proxy.url)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": _database_url(),
            "POLL_CONCURRENCY": str(width),
            "PAYLOAD_ROOT": str(settings.STORAGES["payloads"]["OPTIONS"]["location"]),
            "FIELD_ENCRYPTION_KEYS": ",".join(django_settings.FIELD_ENCRYPTION_KEYS),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("NEOMESH_PRODUCTION", None)
        worker = subprocess.Popen(
            [sys.executable, "-c", POLL_IN_A_PROCESS, str(recipient.pk)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stored = Message.objects.inbound()
        deadline = time.monotonic() + 120
        try:
            # Kill it while every receiver thread waits on MESH (none between MESH's answer and
            # its own record of it), after some messages were stored and before all were.
            while not (stored.count() >= 8 and proxy.held >= width):
                assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "the poll never got going"
                time.sleep(0.005)
            os.killpg(worker.pid, signal.SIGKILL)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        killed_with = stored.count()
        time.sleep(0.5)  # the held requests of the dead worker end without reaching MESH
        assert proxy.peak_in_flight >= width  # its receivers did overlap
    assert 8 <= killed_with < total

    # Its claim outlives it until the lease runs out: as if the lease has.
    Mailbox.objects.filter(pk=recipient.pk).update(
        poll_claimed_at=timezone.now() - inbox.POLL_LEASE - timedelta(seconds=1)
    )
    recipient.base_url = sandbox.url
    recipient.save(update_fields=["base_url"])
    result = inbox.mailbox_poll(mailbox=recipient)
    assert result.errors == []
    assert result.downloaded == total - killed_with
    assert inbox.mailbox_poll(mailbox=recipient).listed == 0  # MESH holds nothing back

    received = list(stored.values_list("mesh_message_id", "payload_sha256", "payload"))
    assert {mesh_id: sha for mesh_id, sha, _ in received} == sent  # none lost, none extra
    assert len({name for _, _, name in received}) == total
    assert stored.exclude(status=Status.ACKNOWLEDGED).count() == 0
    assert set(stored.values_list("direction", flat=True)) == {Direction.INBOUND}
    _once_each(Kind.DOWNLOADED, total)
    _once_each(Kind.ACKNOWLEDGED, total)
    _audited_once_each("message.downloaded", total)
    _audited_once_each("message.acknowledged", total)


@pytest.mark.parametrize("width", [1, 4])
def test_a_burst_of_queued_messages_makes_a_few_send_tasks_a_mailbox(task_queue, settings, width):
    settings.OUTBOX_CONCURRENCY = width
    first, second = make_mailbox("X26ABC1"), make_mailbox("X26ABC3")
    for n in range(7):
        queue(first, f"burst {n}".encode())
    queue(second, b"another mailbox")
    # With several at once, the tasks of the first `width` messages send the rest; one at a time,
    # each message has its own.
    assert task_queue.queue_size() == (4 + 1 if width > 1 else 8)
    task_queue.purge_queue()
    assert outbox.outbox_sweep()["enqueued"] == (2 if width > 1 else 8)
    assert task_queue.queue_size() == (2 if width > 1 else 8)


def test_a_poll_opens_a_mesh_connection_only_for_each_request_it_makes_at_once(
    sandbox, settings, monkeypatch
):
    """Request threads start as requests are handed out, up to POLL_CONCURRENCY: a poll of an
    empty inbox (most polls) opens only the lister's connection, one of two messages two more."""
    settings.POLL_CONCURRENCY = 8
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    recipient = make_mailbox("X26ABC2", base_url=sandbox.url)
    opened = []

    def counted(mailbox):
        opened.append(mailbox.mailbox_id)
        return mesh_client(mailbox)

    monkeypatch.setattr(inbox, "mesh_client", counted)
    assert inbox.mailbox_poll(mailbox=recipient).listed == 0
    assert opened == ["X26ABC2"]

    opened.clear()
    for n in range(2):
        outbox.message_send(message_id=queue(sender, f"one of two {n}".encode()).pk)
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.acknowledged, result.errors) == (2, 2, [])
    assert opened == ["X26ABC2"] * 3


def test_a_send_task_starts_a_sending_thread_only_for_each_message_it_sends_at_once(
    sandbox, settings, monkeypatch
):
    settings.OUTBOX_CONCURRENCY = 4
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    started = []

    class Counted(outbox._Clients):
        def __init__(self):
            started.append(1)
            super().__init__()

    monkeypatch.setattr(outbox, "_Clients", Counted)
    alone = queue(sender, b"the only one due")
    assert outbox.outbox_send_with_due(message_id=alone.pk) == {"sent": 1}
    assert len(started) == 1

    # The task's own message first, then the other two due together: two threads, not four.
    started.clear()
    three = [queue(sender, f"one of three {n}".encode()) for n in range(3)]
    assert outbox.outbox_send_with_due(message_id=three[0].pk) == {"sent": 3}
    assert len(started) == 2
    assert set(Message.objects.outbound().values_list("status", flat=True)) == {Status.ACCEPTED}


def test_a_send_task_leaves_a_mailbox_another_task_is_sending_to_that_task(sandbox, settings):
    """One task a mailbox drains it: a second sends its own message and ends, so a burst keeps
    one worker busy a mailbox, not every worker (polls still find one free)."""
    settings.OUTBOX_CONCURRENCY = 4
    sender = make_mailbox("X26ABC1", base_url=sandbox.url)
    other_task = queue(sender, b"being sent by another task")
    Message.objects.filter(pk=other_task.pk).update(
        status=Status.SENDING, claimed_at=timezone.now(), claimed_by="other-host:1:1"
    )
    own, *rest = [queue(sender, f"due {n}".encode()) for n in range(4)]

    assert outbox.outbox_send_with_due(message_id=own.pk) == {"sent": 1}
    own.refresh_from_db()
    assert own.status == Status.ACCEPTED
    assert {m.status for m in Message.objects.filter(pk__in=[m.pk for m in rest])} == {
        Status.QUEUED
    }

    # That task's claim gone stale (its worker died): the next task drains the mailbox.
    Message.objects.filter(pk=other_task.pk).update(
        claimed_at=timezone.now() - outbox.CLAIM_LEASE - timedelta(seconds=1)
    )
    assert outbox.outbox_send_with_due(message_id=rest[0].pk) == {"sent": 3}
    assert {m.status for m in Message.objects.filter(pk__in=[m.pk for m in rest])} == {
        Status.ACCEPTED
    }
