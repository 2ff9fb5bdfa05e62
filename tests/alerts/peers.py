"""Real peers for the alert tests: an SMTP server (aiosmtpd) and an HTTP receiver, on loopback."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.sandbox import free_port


class _Mailroom:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd in a thread; `messages` holds what arrived, `refuse` makes it refuse recipients."""

    def __init__(self):
        self.room = _Mailroom()
        self.port = free_port()
        self.controller = Controller(self.room, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self.room.messages

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class Receiver:
    """An HTTP receiver that checks the NeoMesh signature. `mode`: ok, refuse, redirect, slow."""

    def __init__(self, secret: str = ""):
        self.secret, self.mode, self.requests = secret, "ok", []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body),
                        "signed": receiver.signed(self.headers, body),
                    }
                )
                if receiver.mode == "slow":
                    time.sleep(3)
                status = {"ok": 200, "refuse": 500, "redirect": 302, "slow": 200}[receiver.mode]
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # closing never waits out a "slow" answer
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def signed(self, headers, body: bytes) -> bool:
        timestamp, signature = (
            headers.get("X-NeoMesh-Timestamp", ""),
            headers.get("X-NeoMesh-Signature", ""),
        )
        if not self.secret or not timestamp or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(signature, "sha256=" + expected.hexdigest())

    def __enter__(self):
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
