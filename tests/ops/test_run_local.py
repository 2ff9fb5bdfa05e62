"""`make run` stops everything however it is stopped: a real `run_local` in its own process group.

A terminal hang-up, `docker stop` or systemd signal the whole process group (SIGHUP or SIGTERM); a
person presses Ctrl-C (SIGINT). Each must stop mesh-sandbox, the worker cluster and the web server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from portal.front.management.commands.run_local import what_answers
from tests.sandbox import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent pid is the second field after the command name in parentheses.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _env(var_dir: Path, **more: str) -> dict[str, str]:
    env = {
        **os.environ,
        "NEOMESH_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        **more,
    }
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A var directory `manage.py migrate` made, once for the module: each stack starts on a copy."""
    var_dir = tmp_path_factory.mktemp("migrated-var")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=_env(var_dir),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return var_dir


@pytest.fixture
def stack(tmp_path, migrated):
    web_port, sandbox_port = free_port(), free_port()
    shutil.copytree(migrated, tmp_path, dirs_exist_ok=True)
    env = _env(tmp_path, MESH_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}", Q_WORKERS="1")
    log = open(tmp_path / "run_local.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_local", "--web", f"127.0.0.1:{web_port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "run_local.log").read_text()
        try:
            if requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    children = _children(process.pid)
    yield process, children
    log.close()
    for pid in [process.pid, *children]:
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_it_stops_the_sandbox_the_workers_and_the_web_server_however_signalled(stack, signum):
    process, children = stack
    assert len(children) == 3, (
        "run_local starts mesh-sandbox, the worker cluster and the web server"
    )
    os.killpg(process.pid, signum)
    process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if _alive(pid)] == []


def test_it_stops_everything_when_signalled_again_while_stopping(stack, tmp_path):
    process, children = stack
    # Started: the banner comes last, and none of the sandbox's deprecation warnings bury it.
    log = tmp_path / "run_local.log"
    deadline = time.monotonic() + 30
    while "Ctrl-C stops everything." not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    said = log.read_text()
    after = said.split("Ctrl-C stops everything.")[1].strip().splitlines()
    assert all(line.startswith("[") for line in after), f"only request logs after it: {said}"
    assert "NeoMesh is running at http://127.0.0.1:" in said and "password: neomesh-demo" in said
    assert "deprecated" not in said.lower(), said
    assert "deprecated" not in (tmp_path / "log" / "mesh-sandbox.log").read_text().lower()
    os.killpg(process.pid, signal.SIGTERM)
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    os.killpg(process.pid, signal.SIGHUP)
    process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in children if _alive(pid)] == []


class NotASandbox(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<h1>Another program's page</h1>")

    def log_message(self, *args):
        pass


@pytest.fixture
def other_program():
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotASandbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_it_tells_a_mesh_sandbox_from_another_program(mesh_sandbox, other_program):
    assert what_answers(mesh_sandbox.url) is None
    assert "not a mesh-sandbox (HTTP 200" in what_answers(other_program)


def test_it_refuses_to_start_when_another_program_has_the_sandbox_port(other_program, tmp_path):
    env = {
        **os.environ,
        "NEOMESH_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "MESH_SANDBOX_URL": other_program,
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "run_local", "--web", f"127.0.0.1:{free_port()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    port = other_program.rpartition(":")[2]
    assert f"mesh-sandbox's port {port} ({other_program}) is taken by an HTTP server that is " in (
        done.stderr
    )
    assert "MESH_SANDBOX_URL=http://127.0.0.1:8701 make run" in done.stderr
    assert "NeoMesh is running" not in done.stdout
