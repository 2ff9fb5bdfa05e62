"""Scale-out: two worker clusters on PostgreSQL and Redis, one killed midway; every message exactly once.

Runs in `make test`'s second phase, where `tests.services` has started PostgreSQL and Redis on
loopback and set DATABASE_URL and REDIS_URL. It fails (never skips) anywhere else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_q.tasks import async_task

from portal.audit.models import AuditRecord
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import mesh_client
from portal.messaging.models import Direction, Message, MessageEvent, Status
from tests.factories import make_mailbox
from tests.messaging.helpers import queue

pytestmark = [pytest.mark.scaleout, pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PER_DIRECTION = 500
DEADLINE_SECONDS = 600
SENT = [Status.ACCEPTED, Status.ACKNOWLEDGED]


def _require_scaleout_engines() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("The scale-out tests need PostgreSQL and Redis: run them through `make test`.")


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Cluster:
    def __init__(self, name: str, payload_root: Path, log_dir: Path):
        # Both clusters run on this host: a worker name each tells their claims apart.
        self.name = name
        env = {
            "NEOMESH_WORKER_NAME": name,
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PAYLOAD_ROOT": str(payload_root),
            "Q_WORKERS": "2",
            "OUTBOX_CLAIM_LEASE_SECONDS": "6",
            "POLL_CLAIM_LEASE_SECONDS": "6",
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "LOG_LEVEL": "WARNING",
        }
        self.log = open(log_dir / f"cluster-{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def sending(self) -> list[int]:
        """Messages this cluster's workers are sending now (claimed, not finished)."""
        mine = Message.objects.outbound().filter(
            status=Status.SENDING, claimed_by__startswith=f"{self.name}:"
        )
        return list(mine.values_list("pk", flat=True))

    def kill_during_a_send(self) -> list[int]:
        """Freeze the cluster; kill it if it holds a send claim, else let it go on.

        Returns the messages whose claims died with it (empty when it was not killed), so the
        kill always leaves work that only a released claim lets the other cluster finish.
        """
        self.signal(signal.SIGSTOP)
        held = self.sending()
        if not held:
            self.signal(signal.SIGCONT)
            return []
        self.kill()
        return held

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        # The test is over: no need to wait for a graceful shutdown.
        if self.process.poll() is None:
            self.kill()
        self.log.close()


def _nudge(mailboxes: list[Mailbox]) -> None:
    """What the every-minute schedules do, every second: poll both mailboxes, sweep the outbox."""
    for mailbox in mailboxes:
        async_task("portal.messaging.tasks.poll_mailbox", mailbox.pk)
    async_task("portal.messaging.tasks.sweep_outbox")


def _claimants(**filters) -> set[str]:
    """The clusters that claimed sends: details read "Attempt 1 by <name>:<pid>:<thread>"."""
    details = MessageEvent.objects.filter(kind=MessageEvent.Kind.CLAIMED, **filters)
    return {d.split(" by ")[-1].split(":")[0] for d in details.values_list("detail", flat=True)}


def _has_claimed(cluster: str) -> bool:
    claims = MessageEvent.objects.filter(kind=MessageEvent.Kind.CLAIMED)
    return claims.filter(detail__contains=f" by {cluster}:").exists()


def _waiting_in_mesh(mailbox: Mailbox) -> list[str]:
    with mesh_client(mailbox) as client:
        return list(client.iter_inbox())


def _progress() -> tuple[int, int]:
    # The clusters' own schedules also refresh tracking, which moves "accepted" on to "acknowledged".
    accepted = Message.objects.outbound().filter(status__in=SENT).count()
    acknowledged = Message.objects.inbound().filter(status=Status.ACKNOWLEDGED).count()
    return accepted, acknowledged


def test_two_clusters_move_every_message_exactly_once_when_one_is_killed(
    sandbox, tmp_path, settings
):
    _require_scaleout_engines()
    mailboxes = [make_mailbox(mb, base_url=sandbox.url) for mb in ("X26ABC1", "X26ABC2")]
    for n in range(PER_DIRECTION):
        queue(mailboxes[0], f"one-to-two {n}\n".encode() * 4, to="X26ABC2")
        queue(mailboxes[1], f"two-to-one {n}\n".encode() * 4, to="X26ABC1")
    payload_root = Path(settings.STORAGES["payloads"]["OPTIONS"]["location"])

    clusters = [Cluster(name, payload_root, tmp_path) for name in ("cluster-a", "cluster-b")]
    killed_at, killed_claims, kill_time, b_sent = None, [], None, False
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            _nudge(mailboxes)
            nudge_again = time.monotonic() + 1
            accepted, acknowledged = _progress()
            # Sends are quick (a few ms each, several at once): a check a second can miss every
            # claim of cluster a, so it is caught at one within the second, 20 times a second.
            # From as soon as cluster b has sent too: one task drains a mailbox, so once both
            # drains run on cluster b, cluster a may hold no send claim again (waiting for 30% of
            # the sends to be accepted missed it that way).
            while killed_at is None and accepted < 2 * PER_DIRECTION:
                b_sent = b_sent or _has_claimed("cluster-b")
                if b_sent and (killed_claims := clusters[0].kill_during_a_send()):
                    killed_at, kill_time = _progress(), timezone.now()
                elif time.monotonic() < nudge_again:
                    time.sleep(0.05)
                else:
                    break
            if accepted == acknowledged == 2 * PER_DIRECTION:
                break
            time.sleep(max(0.0, nudge_again - time.monotonic()))
    finally:
        for cluster in clusters:
            cluster.stop()

    assert sandbox.process.poll() is None, "mesh-sandbox died during the test"
    assert killed_at is not None and killed_at[0] < 2 * PER_DIRECTION, (
        "cluster a was not killed midway"
    )
    outbound = Message.objects.outbound()
    inbound = Message.objects.inbound()
    assert outbound.exclude(status__in=SENT).count() == 0, list(
        outbound.exclude(status__in=SENT).values_list("status", "last_error")[:5]
    )
    # Exactly once: each sent message arrived once, and nothing arrived that was not sent once.
    for mailbox in mailboxes:
        assert inbound.filter(mailbox=mailbox).count() == PER_DIRECTION
    sent = dict(outbound.values_list("mesh_message_id", "payload_sha256"))
    received = list(inbound.values_list("mesh_message_id", "payload_sha256", "local_id"))
    assert len(sent) == 2 * PER_DIRECTION
    assert {mesh_id: sha for mesh_id, sha, _ in received} == sent
    assert len({local_id for _, _, local_id in received}) == 2 * PER_DIRECTION
    assert inbound.exclude(status=Status.ACKNOWLEDGED).count() == 0
    assert set(inbound.values_list("direction", flat=True)) == {Direction.INBOUND}
    # Each message was stored (downloaded and recorded) once, and MESH holds nothing back.
    downloads = MessageEvent.objects.filter(kind=MessageEvent.Kind.DOWNLOADED)
    assert downloads.count() == 2 * PER_DIRECTION
    assert not downloads.values("message").annotate(n=Count("id")).filter(n__gt=1).exists()
    for mailbox in mailboxes:
        assert _waiting_in_mesh(mailbox) == []
    # Both clusters sent messages before the kill, and the survivor carried on after it.
    assert _claimants(at__lt=kill_time) == {"cluster-a", "cluster-b"}
    assert _claimants(at__gt=kill_time) == {"cluster-b"}
    # The sends cluster a died in were released by the sweep and finished by cluster b.
    released = AuditRecord.objects.filter(
        action="message.claim_released", object_id__in=[str(pk) for pk in killed_claims]
    )
    assert set(released.values_list("object_id", flat=True)) == {str(pk) for pk in killed_claims}
    assert all(d.startswith("worker cluster-a:") for d in released.values_list("detail", flat=True))
    assert outbound.filter(pk__in=killed_claims, status__in=SENT).count() == len(killed_claims)
