from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor, record
from portal.mailboxes.management.commands._common import get_mailbox
from portal.mailboxes.models import Mailbox
from portal.messaging.inbox import mailbox_poll


class Command(BaseCommand):
    help = "Poll MESH now (all enabled mailboxes, or those named); prints what was downloaded and acknowledged."

    def add_arguments(self, parser):
        parser.add_argument(
            "mailboxes",
            nargs="*",
            metavar="MAILBOX",
            help="MESH mailbox ids (default: all enabled)",
        )

    def handle(self, *args, **options):
        mailboxes = [get_mailbox(m) for m in options["mailboxes"]] or list(
            Mailbox.objects.enabled()
        )
        if not mailboxes:
            raise CommandError("No enabled mailboxes to poll.")
        failed = False
        for mailbox in mailboxes:
            result = mailbox_poll(mailbox=mailbox)
            record(
                actor=Actor.command(), action="mailbox.poll", obj=mailbox, detail=result.summary()
            )
            self.stdout.write(result.summary())
            failed = failed or not result.ok
        if failed:
            raise CommandError("At least one poll did not complete; see above.")
