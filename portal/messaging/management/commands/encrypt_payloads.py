"""Encrypt, in place, every payload stored before payload encryption was turned on."""

from django.core.management.base import BaseCommand

from portal.audit.services import Actor, record
from portal.lib import payloads


class Command(BaseCommand):
    help = (
        "Encrypt every plain payload in the payload store, in place (each replaced whole, so a "
        "killed run leaves each payload either plain or encrypted). Safe to run again: payloads "
        "already encrypted are skipped, so a run that was stopped carries on where it was."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the plain payloads, change nothing."
        )

    def handle(self, *args, dry_run=False, **options):
        store = payloads.store()
        encrypted = already = failed = 0
        for name in store.names():
            try:
                if dry_run:
                    if payloads.is_stored_encrypted(name):
                        already += 1
                    else:
                        encrypted += 1
                elif payloads.encrypt_in_place(name):
                    encrypted += 1
                else:
                    already += 1
            except (OSError, payloads.PayloadUnreadable) as exc:
                # One unreadable payload never stops the rest; it is named for the operator.
                failed += 1
                self.stderr.write(f"{name}: not encrypted ({type(exc).__name__}: {exc})")
        verb = "would be encrypted" if dry_run else "encrypted"
        summary = f"{encrypted} payloads {verb}, {already} already encrypted, {failed} failed"
        if not dry_run:
            record(
                actor=Actor.command(),
                action="payloads.encrypted",
                detail=f"{summary} in {store.url}",
            )
        style = self.style.ERROR if failed else self.style.SUCCESS
        self.stdout.write(style(summary + "."))
        if failed:
            raise SystemExit(1)
