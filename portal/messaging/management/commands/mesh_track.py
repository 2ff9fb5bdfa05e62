from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor, record
from portal.messaging.models import Message
from portal.messaging.services import message_refresh_tracking


class Command(BaseCommand):
    help = "Ask MESH where a message we sent is now, and update NeoMesh's record of it."

    def add_arguments(self, parser):
        parser.add_argument("message_id", help="The MESH message id")

    def handle(self, *args, **options):
        mesh_id = options["message_id"].strip().upper()
        message = (
            Message.objects.outbound()
            .select_related("mailbox")
            .filter(mesh_message_id=mesh_id)
            .first()
        )
        if message is None:
            raise CommandError(f"NeoMesh sent no message with MESH id {mesh_id!r}.")
        state = message_refresh_tracking(message=message)
        record(actor=Actor.command(), action="message.track", obj=message, detail=state)
        message.refresh_from_db()
        if state.startswith("tracking failed"):
            raise CommandError(f"{mesh_id}: {state}")
        self.stdout.write(
            f"{mesh_id}: MESH status {state}; NeoMesh status {message.get_status_display()}"
        )
        if message.failure_reason:
            self.stdout.write(message.failure_reason)
