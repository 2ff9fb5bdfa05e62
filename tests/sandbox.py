"""Start and stop a real mesh-sandbox server on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

SHARED_KEY = "TestKey"
PASSWORD = "password"  # the sandbox's public test password for X26ABC1-3
MAILBOXES = ("X26ABC1", "X26ABC2", "X26ABC3")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(process: subprocess.Popen, ready, *, name: str, log, timeout: float) -> None:
    """Wait until `ready()` is true for a peer process just started; a clear error with the end
    of its `log()` if it exits first, and stopped with an error if it is not ready in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log()[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"{name} did not start within {timeout}s")


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a peer process, killing it if it has not ended within 10 seconds."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class MeshSandbox:
    """A mesh-sandbox process (AUTH_MODE=full, STORE_MODE=memory, SHARED_KEY=TestKey)."""

    port: int = 0
    ssl_args: list[str] = field(default_factory=list)
    scheme: str = "http"
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @staticmethod
    def tls_args(certfile: str, keyfile: str, ca_certs: str | None = None) -> list[str]:
        """uvicorn options to serve TLS; with ``ca_certs``, require a client certificate (mTLS)."""
        args = ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
        if ca_certs:
            args += ["--ssl-ca-certs", str(ca_certs), "--ssl-cert-reqs", "2"]
        return args

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MeshSandbox:
        self.port = self.port or free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
        }
        env.update(AUTH_MODE="full", STORE_MODE="memory", SHARED_KEY=SHARED_KEY, ENV="local")
        log = tempfile.NamedTemporaryFile(prefix="mesh-sandbox-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "mesh_sandbox.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            *self.ssl_args,
        ]
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        wait_ready(
            self.process,
            self._port_open,
            name="mesh-sandbox",
            log=self.log_path.read_text,
            timeout=timeout,
        )

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        if self.ssl_args:
            return True
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    # Admin API (sandbox only, no authentication).
    def _admin_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        return session

    def reset(self, mailbox_id: str | None = None) -> None:
        path = (
            f"/messageexchange/admin/reset/{mailbox_id}"
            if mailbox_id
            else "/messageexchange/admin/reset"
        )
        self._admin_session().delete(self.url + path, timeout=10).raise_for_status()

    def report_not_collected(self, message) -> str:
        """MESH's non-delivery report for a message NeoMesh sent: not collected (code 14), put in
        the sender's inbox; returns the report's id."""
        return self.inject_report(
            mailbox_id=message.mailbox.mailbox_id,
            code="14",
            description="not collected",
            workflow_id=message.workflow_id,
            subject=message.subject,
            local_id=message.local_id,
            status="undeliverable",
            linked_message_id=message.mesh_message_id,
        )

    def inject_report(self, **fields) -> str:
        """Put a REPORT (non-delivery) message into `mailbox_id`'s inbox; returns its message id."""
        response = self._admin_session().post(
            self.url + "/messageexchange/admin/report", json=fields, timeout=10
        )
        response.raise_for_status()
        return response.json()["message_id"]

    def __enter__(self) -> MeshSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
