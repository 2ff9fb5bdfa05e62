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
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.mailboxes.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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
        parser.add_argument("--web", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start mesh-sandbox")

    def handle(self, *args, **options):
        host, _, port = options["web"].rpartition(":")
        if _port_in_use(host or "127.0.0.1", int(port)):
            raise CommandError(f"Port {port} is already in use: is NeoMesh already running?")
        self.children: list[tuple[str, subprocess.Popen]] = []
        for signum in STOP_SIGNALS:
            signal.signal(signum, _interrupt)
        try:
            if not options["no_sandbox"]:
                self._start_sandbox()
            self._start("worker cluster", [sys.executable, "manage.py", "qcluster"])
            self._start(
                "web server",
                [sys.executable, "manage.py", "runserver", "--noreload", options["web"]],
            )
            self._banner(options["web"])
            self._supervise()
        except KeyboardInterrupt:
            self._say("\nStopping NeoMesh...")
        finally:
            _ignore_stop_signals()
            self._stop()

    def _start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(command, env=env, start_new_session=True, cwd=settings.BASE_DIR)
        self.children.append((name, process))
        return process

    def _start_sandbox(self) -> None:
        url = urlparse(settings.MESH_SANDBOX_URL)
        host, port = url.hostname or "127.0.0.1", url.port or 8700
        if _port_in_use(host, port):
            self.stdout.write(
                f"mesh-sandbox: something already answers on {host}:{port}; using it."
            )
            return
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
        )
        deadline = time.monotonic() + 30
        while not _port_in_use(host, port):
            if time.monotonic() > deadline:
                raise CommandError("mesh-sandbox did not start within 30 s.")
            time.sleep(0.2)

    def _say(self, text: str) -> None:
        # After a hang-up the terminal is gone: a failed write must not stop the cleanup.
        try:
            self.stdout.write(text)
        except OSError:
            pass

    def _banner(self, web: str) -> None:
        logins = ", ".join(f"{name}" for name, _, _ in DEMO_USERS)
        self.stdout.write(
            self.style.SUCCESS(
                f"\nNeoMesh is running at http://{web}/\n"
                f"  mesh-sandbox: {settings.MESH_SANDBOX_URL}\n"
                f"  demo logins ({logins}), password: {DEMO_PASSWORD}\n"
                "  Ctrl-C stops everything.\n"
            )
        )

    def _supervise(self) -> None:
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    raise CommandError(f"The {name} stopped (exit code {process.returncode}).")
            time.sleep(0.5)

    def _stop(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in self.children:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.children = []
