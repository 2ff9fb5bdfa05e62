from django.core.management.base import BaseCommand

from portal.audit.services import Actor, record
from portal.certificates.models import Certificate
from portal.certificates.services import certificate_create_csr
from portal.mailboxes.management.commands._common import get_mailbox


class Command(BaseCommand):
    help = (
        "Print the mailbox's CSR awaiting a certificate, making a new key and CSR if there is none."
    )

    def add_arguments(self, parser):
        parser.add_argument("mailbox", help="MESH mailbox id")
        parser.add_argument("--new", action="store_true", help="Always make a new key and CSR")

    def handle(self, *args, **options):
        mailbox = get_mailbox(options["mailbox"])
        certificate = None
        if not options["new"]:
            certificate = mailbox.certificates.filter(status=Certificate.Status.AWAITING).first()
        if certificate is None:
            certificate = certificate_create_csr(mailbox=mailbox, actor=Actor.command())
            self.stderr.write(f"New key and CSR for CN {certificate.common_name}")
        else:
            record(actor=Actor.command(), action="certificate.csr_downloaded", obj=certificate)
        self.stdout.write(certificate.csr_pem, ending="")
