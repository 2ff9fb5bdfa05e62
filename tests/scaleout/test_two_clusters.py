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
from django_q.tasks import async_task

from portal.mailboxes.models import Mailbox
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
        self.name = name
        env = {
            **os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL,
            "PAYLOAD_ROOT": str(payload_root), "Q_WORKERS": "2", "OUTBOX_CLAIM_LEASE_SECONDS": "6",
            "POLL_CLAIM_LEASE_SECONDS": "6", "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        self.log = open(log_dir / f"cluster-{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
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


def _claim_details() -> list[str]:
    return list(
        MessageEvent.objects.filter(kind=MessageEvent.Kind.CLAIMED).values_list("detail", flat=True)
    )


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

    clusters = [Cluster(name, payload_root, tmp_path) for name in ("a", "b")]
    killed_at = None
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            _nudge(mailboxes)
            accepted, acknowledged = _progress()
            if killed_at is None and accepted >= 2 * PER_DIRECTION * 0.3:
                clusters[0].kill()
                killed_at = (accepted, acknowledged)
            if accepted == acknowledged == 2 * PER_DIRECTION:
                break
            time.sleep(1)
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
    # Both clusters did real work before one of them died.
    workers = {detail.split(" by ")[-1].split(":")[1] for detail in _claim_details()}
    assert len(workers) >= 2
