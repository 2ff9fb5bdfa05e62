"""Delivery benchmark (issue 14): received messages delivered onwards by the workers' own code.

1,000 small messages (4 KiB) and 5 large ones (100 MiB; 20 MiB with --quick) are stored through the
payload API (encrypted at rest, as in production) and delivered with `delivery_run`, one worker, to
(a) a directory destination (atomic .part + fsync + rename + JSON sidecar) and (b) a local
S3-compatible server (moto's, as a process). Reported: messages/s (small) and MiB/s (large); every
delivered byte checked by sha256. Goal: delivery keeps up with receiving (>= the poll's own rate) and
large payloads stream at >= 100 MiB/s to the local S3 server.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

NAME = "delivery"
DESCRIPTION = "deliveries onwards: messages/s and MiB/s to a directory and a local S3 server"
MiB = 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small", type=int, default=1000, help="small messages (default 1000)")
    parser.add_argument("--large", type=int, default=5, help="large messages (default 5)")
    parser.add_argument("--large-mib", type=int, default=100, help="size of a large one in MiB")
    parser.add_argument("--quick", action="store_true", help="200 small, 2 large of 20 MiB")


def _setup(workdir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "NEOMESH_VAR_DIR": str(workdir / "var"),
            "PAYLOAD_ROOT": str(workdir / "payloads"),
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("PAYLOAD_STORE", None)
    os.environ.pop("NEOMESH_PRODUCTION", None)
    (workdir / "var").mkdir()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run(args: argparse.Namespace) -> int:
    from tests.peers.s3 import S3Server

    small, large, large_mib = args.small, args.large, args.large_mib
    if args.quick:
        small, large, large_mib = 200, 2, 20
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as tmp, S3Server() as s3:
        workdir = Path(tmp)
        _setup(workdir)
        s3.client().create_bucket(
            Bucket="bench", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        return _run(workdir, s3, small, large, large_mib)


def _run(workdir: Path, s3, small: int, large: int, large_mib: int) -> int:
    from django.utils import timezone

    from portal.integrations.models import Delivery, Destination, Route, RouteDestination
    from portal.integrations.services import deliveries_plan, delivery_run
    from portal.lib import payloads
    from portal.messaging.models import Direction, Message, Status
    from tests.factories import make_mailbox

    mailbox = make_mailbox("X26BENCH")
    (workdir / "drop").mkdir()
    targets = {
        "directory": Destination.objects.create(
            name="dir", kind="directory", settings={"path": str(workdir / "drop")}
        ),
        "s3": Destination.objects.create(
            name="s3",
            kind="s3",
            secret="test",
            settings={"endpoint_url": s3.url, "bucket": "bench", "access_key_id": "test"},
        ),
    }
    counter = iter(range(10**9))

    def message(data_source, size: int) -> Message:
        stored = payloads.store_stream(data_source, "in")
        return Message.objects.create(
            mailbox=mailbox,
            direction=Direction.INBOUND,
            workflow_id="BENCH",
            sender="X26OTHER",
            recipient="X26BENCH",
            filename=f"f{next(counter)}.bin",
            mesh_message_id=f"BENCH_{next(counter):012d}",
            size_bytes=stored.size,
            payload=stored.name,
            payload_sha256=stored.sha256,
            status=Status.ACKNOWLEDGED,
            received_at=timezone.now(),
        )

    print(
        f"storing {small} x 4 KiB and {large} x {large_mib} MiB (encrypted at rest)...", flush=True
    )
    smalls = [message(io.BytesIO(os.urandom(4096)), 4096) for _ in range(small)]
    bigs = []
    for _ in range(large):
        path = workdir / "large.bin"
        with path.open("wb") as out:
            for _ in range(large_mib):
                out.write(os.urandom(MiB))
        with path.open("rb") as source:
            bigs.append(message(source, large_mib * MiB))
        path.unlink()

    ok = True
    print(f"{'destination':<10} {'small msg/s':>12} {'large MiB/s':>12}")
    for kind, destination in targets.items():
        Route.objects.all().delete()
        route = Route.objects.create(name=kind, mailbox=mailbox, workflow_pattern="*")
        RouteDestination.objects.create(route=route, destination=destination)
        rates = []
        for batch, unit in ((smalls, len(smalls)), (bigs, large * large_mib)):
            planned = [d.pk for m in batch for d in deliveries_plan(message=m)]
            start = time.perf_counter()
            states = [delivery_run(delivery_id=pk) for pk in planned]
            elapsed = time.perf_counter() - start
            if set(states) != {"delivered"}:
                ok = False
                errors = set(
                    Delivery.objects.filter(pk__in=planned).values_list("last_error", flat=True)
                )
                print(f"  {kind}: not all delivered: {errors}")
            rates.append(unit / elapsed if elapsed else 0.0)
        print(f"{kind:<10} {rates[0]:>12.1f} {rates[1]:>12.1f}", flush=True)
        ok = _verify(kind, workdir, s3, bigs) and ok
    return 0 if ok else 1


def _verify(kind: str, workdir: Path, s3, bigs) -> bool:
    for message in bigs:
        digest = hashlib.sha256()
        if kind == "directory":
            (path,) = list((workdir / "drop").rglob(message.filename))
            with path.open("rb") as handle:
                while block := handle.read(MiB):
                    digest.update(block)
        else:
            body = s3.client().get_object(
                Bucket="bench", Key=f"inbound/X26BENCH/{message.mesh_message_id}"
            )["Body"]
            while block := body.read(MiB):
                digest.update(block)
        if digest.hexdigest() != message.payload_sha256:
            print(f"  {kind}: {message.mesh_message_id} differs from the stored payload")
            return False
    return True
