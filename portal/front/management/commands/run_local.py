"""Start NeoMesh on its embedded defaults: mesh-sandbox, the worker cluster and the web server.

Used by `make run`. Ctrl-C, SIGTERM or SIGHUP (a terminal hang-up, `docker stop`, systemd), or any of
the three stopping, stops all of them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.mailboxes.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def what_answers(url: str) -> str | None:
    """None when a mesh-sandbox answers at ``url``; otherwise what does, in a few words.

    A mesh-sandbox answers its ping with its environment, build label, "running" and "Yes", and
    calls itself "MESH Sandbox" in its OpenAPI document; NHS England's real MESH never does the
    latter, and another program on the port does neither.
    """
    session = requests.Session()
    session.trust_env = False  # a proxy must not answer for a loopback port
    try:
        ping = session.get(f"{url.rstrip('/')}/messageexchange/_ping", timeout=3)
        spec = session.get(f"{url.rstrip('/')}/openapi.json", timeout=3)
    except requests.RequestException as exc:
        return f"something that does not speak HTTP there ({type(exc).__name__})"
    try:
        pinged = ping.json() if ping.ok else {}
        title = spec.json().get("info", {}).get("title") if spec.ok else None
    except ValueError:
        pinged, title = {}, None
    if (
        isinstance(pinged, dict)
        and pinged.get("status") == "running"
        and pinged.get("outcome") == "Yes"
        and title == "MESH Sandbox"
    ):
        return None
    server = ping.headers.get("Server", "").strip()
    return f"an HTTP server that is not a mesh-sandbox (HTTP {ping.status_code} to its ping" + (
        f", Server: {server[:60]})" if server else ")"
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(*_args) -> None:
    # SIGTERM and SIGHUP stop everything the way Ctrl-C does. Only once: from here on every stop
    # signal is ignored, so that a second one (a whole process group signalled, or a person pressing
    # Ctrl-C again) cannot interrupt the cleanup that stops the children.
    _ignore_stop_signals()
    raise KeyboardInterrupt


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class Command(BaseCommand):
    help = "Run mesh-sandbox, the django-q2 cluster and the web server together (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--web",
            default="127.0.0.1:8000",
            help="host:port for the web server (mesh-sandbox's is MESH_SANDBOX_URL's)",
        )
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start mesh-sandbox")

    def handle(self, *args, **options):
        host, _, port = options["web"].rpartition(":")
        host = host or "127.0.0.1"
        if _port_in_use(host, int(port)):
            raise CommandError(
                f"Port {port} is already in use: is NeoMesh already running? To use another "
                "port: manage.py run_local --web 127.0.0.1:8001"
            )
        self.children: list[tuple[str, subprocess.Popen, Path | None]] = []
        self.logs = settings.VAR_DIR / "log"
        self.logs.mkdir(parents=True, exist_ok=True)
        for signum in STOP_SIGNALS:
            signal.signal(signum, _interrupt)
        try:
            sandbox_note = "" if options["no_sandbox"] else self._start_sandbox()
            self._start(
                "worker cluster",
                [sys.executable, "manage.py", "qcluster"],
                log=self.logs / "workers.log",
            )
            self._start(
                "web server",
                [sys.executable, "manage.py", "runserver", "--noreload", options["web"]],
            )
            self._wait_for("web server", host, int(port), seconds=120)
            self._banner(options["web"], sandbox_note)
            self._supervise()
        except KeyboardInterrupt:
            self._say("\nStopping NeoMesh...")
        finally:
            _ignore_stop_signals()
            self._stop()

    def _start(
        self, name: str, command: list[str], env: dict | None = None, log: Path | None = None
    ) -> subprocess.Popen:
        # Unbuffered, so that what a child says reaches the terminal (or its log) in order.
        env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
        output = open(log, "ab") if log else None  # noqa: SIM115 - the child holds it
        try:
            process = subprocess.Popen(
                command,
                env=env,
                start_new_session=True,
                cwd=settings.BASE_DIR,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
            )
        finally:
            if output:
                output.close()
        self.children.append((name, process, log))
        return process

    def _wait_for(self, name: str, host: str, port: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not _port_in_use(host, port):
            for child, process, log in self.children:
                if process.poll() is not None:
                    raise CommandError(self._stopped(child, process, log))
            if time.monotonic() > deadline:
                raise CommandError(f"The {name} did not start within {seconds:.0f} s.")
            time.sleep(0.2)

    def _start_sandbox(self) -> str:
        url = urlparse(settings.MESH_SANDBOX_URL)
        host, port = url.hostname or "127.0.0.1", url.port or 8700
        if _port_in_use(host, port):
            problem = what_answers(settings.MESH_SANDBOX_URL)
            if problem:
                raise CommandError(
                    f"mesh-sandbox's port {port} ({settings.MESH_SANDBOX_URL}) is taken by "
                    f"{problem}. NeoMesh will not send test messages there. Stop that program, "
                    "or give the sandbox a free port: MESH_SANDBOX_URL=http://127.0.0.1:8701 "
                    "make run"
                )
            return " (already running: using it, not starting another)"
        store = settings.VAR_DIR / "mesh-sandbox"
        store.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AUTH_MODE": "full",
            "STORE_MODE": "file",
            "MAILBOXES_DATA_DIR": str(store),
            "FILE_STORE_DIR": str(store),
            "SHARED_KEY": settings.MESH_SANDBOX_SHARED_KEY,
        }
        self._start(
            "mesh-sandbox",
            [
                sys.executable,
                # mesh-sandbox's FastAPI deprecation warnings (thirty lines at every start) are
                # the sandbox's business, not the person's running NeoMesh.
                "-W",
                "ignore::UserWarning",
                "-W",
                "ignore::DeprecationWarning",
                "-m",
                "uvicorn",
                "mesh_sandbox.api:app",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            env=env,
            log=self.logs / "mesh-sandbox.log",
        )
        self._wait_for("mesh-sandbox", host, port)
        return ""

    def _say(self, text: str) -> None:
        # After a hang-up the terminal is gone: a failed write must not stop the cleanup.
        try:
            self.stdout.write(text)
        except OSError:
            pass

    def _banner(self, web: str, sandbox_note: str) -> None:
        """Printed last, once the web server listens: the one thing a person needs to read."""
        logins = ", ".join(f"{name}" for name, _, _ in DEMO_USERS)
        self.stdout.write(
            self.style.SUCCESS(
                f"\nNeoMesh is running at http://{web}/\n"
                f"  mesh-sandbox: {settings.MESH_SANDBOX_URL}{sandbox_note}\n"
                f"  demo logins ({logins}), password: {DEMO_PASSWORD}\n"
                f"  logs of mesh-sandbox and the workers: {self.logs}/\n"
                "  Ctrl-C stops everything.\n"
            )
        )

    def _stopped(self, name: str, process: subprocess.Popen, log: Path | None) -> str:
        text = f"The {name} stopped (exit code {process.returncode})."
        if log and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-15:]
            text += f" The end of {log}:\n" + "\n".join(tail)
        return text

    def _supervise(self) -> None:
        while True:
            for name, process, log in self.children:
                if process.poll() is not None:
                    raise CommandError(self._stopped(name, process, log))
            time.sleep(0.5)

    def _stop(self) -> None:
        for _name, process, _log in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process, _log in self.children:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.children = []
