"""Lift a sign-in lockout now: clear the failures of a username, an address, or both (audited)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.accounts.addresses import normalise_ip
from portal.accounts.services import signin_unlock


class Command(BaseCommand):
    help = "Unlock sign-in for a username and/or an address; audited as auth.lockout_cleared."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="", help="The username to unlock")
        parser.add_argument("--address", default="", help="The client address to unlock")

    def handle(self, *args, username: str, address: str, **options):
        if address and normalise_ip(address) is None:
            raise CommandError(f"{address!r} is not an IP address.")
        if not username and not address:
            raise CommandError("Give --username, --address, or both.")
        count = signin_unlock(username=username.strip(), address=normalise_ip(address) or "")
        who = " from ".join(part for part in (username, address) if part)
        self.stdout.write(f"Sign-in unlocked for {who}: {count} failure record(s) cleared.")
