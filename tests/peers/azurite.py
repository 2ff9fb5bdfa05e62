"""A real Azure Blob peer: Azurite, Microsoft's storage emulator, as a process on a free loopback
port. Installed from tests/peers/azurite/package.json + package-lock.json by `make azurite` (a
step of `make test`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.sandbox import free_port, stop_process, wait_ready

HERE = Path(__file__).parent / "azurite"
BINARY = HERE / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (published in Microsoft's documentation).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    port: int = 0
    process: subprocess.Popen | None = None
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def start(self, timeout: float = 30.0) -> Azurite:
        if not BINARY.exists():
            raise RuntimeError(
                f"Azurite is not installed ({BINARY} is missing): run `make azurite` "
                "(part of `make test`)."
            )
        self.port = self.port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        log = open(self.workdir / "azurite.log", "wb")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(
            [
                str(BINARY),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.workdir / "data"),
                "--skipApiVersionCheck",
                "--silent",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(self.process, self._listening, name="Azurite", log=self.log, timeout=timeout)
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def log(self) -> str:
        return (self.workdir / "azurite.log").read_text(errors="replace") if self.workdir else ""

    def stop(self) -> None:
        stop_process(self.process)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.url, credential={"account_name": ACCOUNT, "account_key": KEY})

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
