"""A real S3-compatible server: moto's standalone server, as a process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.sandbox import free_port, stop_process, wait_ready


@dataclass
class S3Server:
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> S3Server:
        self.port = self.port or free_port()
        log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_ready(
            self.process,
            self._answers,
            name="moto server",
            log=self.log_path.read_text,
            timeout=timeout,
        )
        return self

    def _answers(self) -> bool:
        try:
            requests.get(f"{self.url}/moto-api/", timeout=1)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        stop_process(self.process)

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="eu-west-2",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
