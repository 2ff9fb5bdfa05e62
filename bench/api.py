"""``python -m bench api``: a large payload up and down through the HTTP API, beside a disk copy.

A real web process (gunicorn, one worker with threads, as deployed) on a private var directory:
the payload is uploaded as a raw body to ``POST /api/v1/messages/`` (streamed into the payload
store, encrypted as by default) and downloaded from ``/payload/`` to a file. The baseline is the
same file copied disk to disk on this machine (read, write, fsync). The web worker's resident
memory is read from /proc before (idle, after a warm-up call) and its peak (``VmHWM``) after.

Goal (issue 13): upload and download each at >= 80% of the disk copy's speed; web RSS flat
(<= 64 MiB above idle) at any size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.payloads import MiB, sha256_file, write_payload

NAME = "api"
DESCRIPTION = "1 GiB up and down through the HTTP API vs a local disk copy, web process RSS"
ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).parent / "results"
SETUP = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from portal.api.services import GrantSpec, token_create
from portal.audit.services import Actor
from portal.mailboxes.models import Mailbox, Organisation, Workflow
org = Organisation.objects.create(name="Bench", ods_code="X26")
boxes = []
for mailbox_id in ("X26ABC1", "X26ABC2"):
    box = Mailbox.objects.create(organisation=org, mailbox_id=mailbox_id, environment="sandbox",
                                 password="password", shared_key="TestKey")
    Workflow.objects.create(mailbox=box, workflow_id="BENCH", direction="send")
    boxes.append(box)
owner = User.objects.create_user("bench")
grants = [GrantSpec(scope=s, mailboxes=boxes) for s in ("messages:send", "payloads:read")]
_, secret = token_create(name="bench", owner=owner, grants=grants, rate_per_minute=100000,
                         expires_at=timezone.now() + timedelta(days=1), actor=Actor.system("bench setup"))
print(secret)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mib", type=int, default=1024, help="Payload size (default 1 GiB).")
    parser.add_argument("--quick", action="store_true", help="64 MiB instead.")
    parser.add_argument("--kind", choices=("random", "csv"), default="random")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children")
        pids = children.read_text().split() if children.exists() else []
        if pids:
            return int(pids[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _disk_copy(source: Path, target: Path) -> float:
    started = time.perf_counter()
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 4 * MiB)
        dst.flush()
        os.fsync(dst.fileno())
    return time.perf_counter() - started


def _start_web(workdir: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--timeout",
            "900",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/healthz", timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError((workdir / "gunicorn.log").read_text())


def run(args: argparse.Namespace) -> int:
    size = (64 if args.quick else args.size_mib) * MiB
    with tempfile.TemporaryDirectory(prefix="neomesh-bench-api-", dir=ROOT / "var") as tmp:
        return _run(Path(tmp), size, args.kind)


def _run(workdir: Path, size: int, kind: str) -> int:
    env = {
        **os.environ,
        "NEOMESH_VAR_DIR": str(workdir),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    secret = (
        subprocess.run(
            [*manage, "shell", "-c", SETUP],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    source = workdir / "payload.bin"
    print(f"Writing a {size // MiB} MiB {kind} payload...", flush=True)
    digest = write_payload(source, kind, size)
    copy_seconds = _disk_copy(source, workdir / "copy.bin")
    (workdir / "copy.bin").unlink()
    process, url = _start_web(workdir, env)
    try:
        result = _transfer(url, secret, source, digest, _worker_pid(process.pid), workdir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    _report(size, copy_seconds, result)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "api.json").write_text(
        json.dumps({"size_bytes": size, "disk_copy_seconds": copy_seconds, **result}, indent=2)
    )
    return 0 if result["ok"] else 1


def _transfer(url, secret, source: Path, digest: str, worker: int, workdir: Path) -> dict:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {secret}"
    query = {"mailbox": "X26ABC1", "recipient": "X26ABC2", "workflow_id": "BENCH"}
    http.post(url + "/api/v1/messages/", params=query, data=b"warm-up", timeout=60)
    idle = _rss_mib(worker, "VmRSS")
    started = time.perf_counter()
    with open(source, "rb") as body:
        sent = http.post(
            url + "/api/v1/messages/",
            params=query,
            data=body,
            timeout=900,
            headers={"Content-Type": "application/octet-stream"},
        )
    upload_seconds = time.perf_counter() - started
    sent.raise_for_status()
    target = workdir / "downloaded.bin"
    started = time.perf_counter()
    with (
        http.get(sent.json()["payload_url"], stream=True, timeout=900) as answer,
        open(target, "wb") as out,
    ):
        answer.raise_for_status()
        for block in answer.iter_content(4 * MiB):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    download_seconds = time.perf_counter() - started
    ok = sent.json()["payload_sha256"] == digest == sha256_file(target)
    return {
        "upload": upload_seconds,
        "download": download_seconds,
        "idle_rss": idle,
        "peak_rss": _rss_mib(worker, "VmHWM"),
        "ok": ok,
    }


def _report(size: int, copy_seconds: float, r: dict) -> None:
    mib = size / MiB
    copy_rate = mib / copy_seconds
    rows = [
        ("disk copy (read, write, fsync)", copy_seconds),
        ("API upload (raw body → payload store)", r["upload"]),
        ("API download (payload → file, fsync)", r["download"]),
    ]
    print(f"\n| {int(mib)} MiB | seconds | MiB/s | of disk copy |\n|---|---|---|---|")
    for label, seconds in rows:
        rate = mib / seconds
        print(f"| {label} | {seconds:.1f} | {rate:.0f} | {100 * rate / copy_rate:.0f}% |")
    grew = r["peak_rss"] - r["idle_rss"]
    print(
        f"\nWeb worker RSS: idle {r['idle_rss']:.0f} MiB, peak {r['peak_rss']:.0f} MiB "
        f"(+{grew:.0f} MiB; goal <= 64). sha256 both ways: {'equal' if r['ok'] else 'DIFFERENT'}."
    )
