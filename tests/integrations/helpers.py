from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.utils import timezone

from portal.integrations.models import Destination, Route, RouteDestination
from portal.lib import payloads
from portal.messaging.models import Direction, Message, MessageType, Status


def received_message(mailbox, data: bytes = b"hello onwards", **fields) -> Message:
    """A message as the inbox stores it: payload durably stored (encrypted at rest), row created."""
    stored = payloads.store_stream(io.BytesIO(data), "in")
    fields.setdefault("mesh_message_id", f"20261203000000000000_{Message.objects.count() + 1:06d}")
    fields.setdefault("workflow_id", "TEST_WORKFLOW")
    fields.setdefault("filename", "results.csv")
    return Message.objects.create(
        mailbox=mailbox,
        direction=Direction.INBOUND,
        message_type=MessageType.DATA,
        sender="X26ABC1",
        recipient=mailbox.mailbox_id,
        size_bytes=stored.size,
        payload=stored.name,
        payload_sha256=stored.sha256,
        status=Status.ACKNOWLEDGED,
        received_at=timezone.now(),
        **fields,
    )


def route_to(mailbox, *destinations: Destination, pattern: str = "*", name: str = "route") -> Route:
    route = Route.objects.create(name=name, mailbox=mailbox, workflow_pattern=pattern)
    for position, destination in enumerate(destinations):
        RouteDestination.objects.create(route=route, destination=destination, position=position)
    return route


class Receiver:
    """A real HTTP receiver in the test process that checks each webhook's signature."""

    def __init__(self, secret: str, status: int = 200, delay: float = 0, location: str = ""):
        self.secret, self.status, self.delay, self.location = secret, status, delay, location
        self.received: list[dict] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-NeoMesh-Timestamp"]
                expected = (
                    "sha256="
                    + hmac.new(
                        receiver.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                )
                if not hmac.compare_digest(expected, self.headers["X-NeoMesh-Signature"]) or (
                    abs(time.time() - int(stamp)) > 300
                ):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
