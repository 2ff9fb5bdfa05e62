"""Directory destination: atomic, sanitised, never overwriting a different file, with a sidecar."""

from __future__ import annotations

import json

import pytest

from portal.integrations import destinations
from portal.integrations.models import Destination, DestinationKind
from portal.integrations.services import deliveries_plan, delivery_run
from tests.factories import make_mailbox

from .helpers import received_message, route_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox():
    return make_mailbox("X26ABC2")


@pytest.fixture
def drop(tmp_path):
    """The destination directory (tmp_path itself holds the test's payload store)."""
    path = tmp_path / "drop"
    path.mkdir()
    return path


def directory(path, template=destinations.DEFAULT_TEMPLATE, **extra) -> Destination:
    return Destination.objects.create(
        name=f"drop-{Destination.objects.count()}",
        kind=DestinationKind.DIRECTORY,
        settings={"path": str(path), "template": template, **extra},
    )


def deliver(message):
    (delivery,) = deliveries_plan(message=message)
    delivery_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_it_writes_the_payload_and_a_sidecar_under_the_template(mailbox, drop):
    route_to(mailbox, directory(drop))
    message = received_message(mailbox, b"a,b\n1,2\n")
    delivery = deliver(message)
    assert delivery.state == "delivered", delivery.last_error
    date = message.received_at.date().isoformat()
    target = drop / "TEST_WORKFLOW" / date / "results.csv"
    assert target.read_bytes() == b"a,b\n1,2\n"
    sidecar = json.loads((target.parent / "results.csv.json").read_text())
    assert sidecar["mesh_message_id"] == message.mesh_message_id
    assert sidecar["sha256"] == message.payload_sha256
    assert not list(drop.rglob("*.part"))  # nothing half-written left behind
    message.refresh_from_db()
    assert message.payload_confirmed_at is not None  # retention may now count from here


def test_it_never_writes_a_retry_twice(mailbox, drop):
    destination = directory(drop)
    message = received_message(mailbox, b"once")
    first = destinations.deliver_directory(destination, message)
    again = destinations.deliver_directory(destination, message)  # a retry after a crash
    assert first == again
    files = sorted(p.name for p in drop.rglob("*") if p.is_file())
    assert files == ["results.csv", "results.csv.json"]


def test_it_never_overwrites_a_different_file_of_the_same_name(mailbox, drop):
    destination = directory(drop, "{filename}")
    (drop / "results.csv").write_bytes(b"someone else's file")
    message = received_message(mailbox, b"ours")
    written = destinations.deliver_directory(destination, message)
    assert (drop / "results.csv").read_bytes() == b"someone else's file"
    assert written.endswith(f"results.{message.mesh_message_id}.csv")
    assert (drop / f"results.{message.mesh_message_id}.csv").read_bytes() == b"ours"


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd",
        "..",
        "/etc/passwd",
        "..\\..\\boot.ini",
        "CON",
        "nul.txt",
        "a\x00b",
        ".hidden",
    ],
)
def test_it_keeps_hostile_filenames_inside_the_directory(mailbox, drop, filename):
    root = drop
    destination = directory(root, "{workflow}/{filename}")
    message = received_message(mailbox, b"x", filename="safe.txt", workflow_id="../../up")
    # Set in memory only: PostgreSQL cannot store a NUL, and MESH cannot send one in a header; the
    # destination must still be safe whatever name reaches it.
    message.filename = filename
    written = destinations.deliver_directory(destination, message)
    assert destinations.Path(written).resolve().is_relative_to(root.resolve())
    name = destinations.Path(written).name
    assert name.split(".")[0].upper() not in destinations.RESERVED
    assert {p.name for p in root.parent.iterdir()} <= {"drop", "payloads", "audit-heads.log"}


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("../{filename}", "'..'"),
        ("/abs/{filename}", "relative"),
        ("{secret_key}", "unknown"),
        ("{filename", "malformed"),
        ("", "empty"),
    ],
)
def test_it_refuses_a_bad_template_with_a_reason(template, reason):
    with pytest.raises(ValueError, match=reason):
        destinations.check_template(template)


def test_a_missing_directory_is_a_failure_with_its_reason(mailbox, drop):
    route_to(mailbox, directory(drop / "not-mounted"))
    delivery = deliver(received_message(mailbox))
    assert delivery.state == "failed"
    assert "does not exist" in delivery.last_error
    assert delivery.attempts == 1


def test_the_probe_writes_and_removes_a_file(drop):
    from portal.audit.actors import SYSTEM
    from portal.integrations.services import destination_probe

    ok, text = destination_probe(destination=directory(drop), actor=SYSTEM)
    assert ok, text
    assert list(drop.iterdir()) == []
    ok, text = destination_probe(destination=directory(drop / "missing"), actor=SYSTEM)
    assert not ok and "does not exist" in text


def test_a_full_disk_is_a_recorded_failure_with_nothing_left_behind(mailbox, drop, monkeypatch):
    # A full disk cannot be made portably without privileges: the write's fsync fails as the
    # kernel reports it (ENOSPC), the one thing mocked here.
    import errno
    import os

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    route_to(mailbox, directory(drop))
    message = received_message(mailbox, b"a,b\n1,2\n")
    monkeypatch.setattr(destinations.os, "fsync", disk_full)
    delivery = deliver(message)
    assert delivery.state == "failed"  # retried later, then dead-lettered if it stays full
    assert "is full: free some space, then replay" in delivery.last_error
    assert [p for p in drop.rglob("*") if p.is_file()] == []  # no partial file, no sidecar
