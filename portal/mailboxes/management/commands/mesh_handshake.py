from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor, record
from portal.mailboxes.services import mailbox_handshake

from ._common import get_mailbox


class Command(BaseCommand):
    help = "Handshake with MESH for one mailbox now; exits non-zero if it fails."

    def add_arguments(self, parser):
        parser.add_argument("mailbox", help="MESH mailbox id, e.g. X26ABC1")

    def handle(self, *args, **options):
        mailbox = get_mailbox(options["mailbox"])
        ok, summary = mailbox_handshake(mailbox=mailbox)
        record(actor=Actor.command(), action="mailbox.handshake", obj=mailbox, detail=summary)
        if not ok:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
