import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor
from portal.mailboxes.management.commands._common import get_mailbox
from portal.messaging.models import Message, Status
from portal.messaging.outbox import message_send
from portal.messaging.services import SendRejected, message_queue_send

DONE = {Status.ACCEPTED, Status.ACKNOWLEDGED, Status.FAILED, Status.UNCERTAIN}


class Command(BaseCommand):
    help = "Queue a file to send through MESH; with --wait, wait for the outcome and print the MESH message id."

    def add_arguments(self, parser):
        parser.add_argument("mailbox", help="Sending MESH mailbox id")
        parser.add_argument("file", help="Path of the file to send")
        parser.add_argument("--to", required=True, help="Recipient MESH mailbox id")
        parser.add_argument("--workflow", required=True, help="MESH workflow id")
        parser.add_argument("--subject", default="")
        parser.add_argument("--local-id", default="")
        parser.add_argument(
            "--filename",
            default=None,
            help="Filename given to the recipient (default: the file's name)",
        )
        parser.add_argument(
            "--encrypted",
            action="store_true",
            help="The file itself is encrypted (mex-Content-Encrypted)",
        )
        parser.add_argument(
            "--compressed",
            action="store_true",
            help="The file itself is compressed, say a zip (mex-Content-Compressed)",
        )
        parser.add_argument(
            "--wait", action="store_true", help="Wait for MESH to accept or reject it"
        )
        parser.add_argument(
            "--timeout", type=int, default=600, help="Seconds to wait with --wait (default 600)"
        )

    def handle(self, *args, **options):
        mailbox = get_mailbox(options["mailbox"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with path.open("rb") as source:
                message = message_queue_send(
                    mailbox=mailbox,
                    recipient=options["to"],
                    workflow_id=options["workflow"],
                    source=source,
                    size=path.stat().st_size,
                    filename=options["filename"] or path.name,
                    subject=options["subject"],
                    local_id=options["local_id"],
                    encrypted=options["encrypted"],
                    compressed=options["compressed"],
                    actor=Actor.command(),
                )
        except SendRejected as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        self.stdout.write(
            f"Queued message #{message.pk} ({message.size_bytes} bytes) to "
            f"{message.recipient_display()}"
        )
        if options["wait"]:
            self._wait(message, options["timeout"])

    def _wait(self, message: Message, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        nudged = False
        while time.monotonic() < deadline:
            message.refresh_from_db()
            if message.status in DONE:
                break
            if (
                not nudged
                and message.status == Status.QUEUED
                and time.monotonic() > deadline - timeout + 10
            ):
                # No worker has picked it up: send it from here (the claim keeps this safe).
                self.stderr.write("No worker picked it up within 10 s; sending from this process.")
                message_send(message_id=message.pk)
                nudged = True
                continue
            time.sleep(0.5)
        message.refresh_from_db()
        if message.status in (Status.ACCEPTED, Status.ACKNOWLEDGED):
            self.stdout.write(message.mesh_message_id)
            return
        if message.status in (Status.FAILED, Status.UNCERTAIN):
            raise CommandError(f"{message.get_status_display()}: {message.failure_reason}")
        raise CommandError(
            f"Still {message.get_status_display()} after {timeout} s (message #{message.pk})."
        )
