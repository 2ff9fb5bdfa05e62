from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.lib.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret, and re-wrap every payload's data key, with the first key "
        "in FIELD_ENCRYPTION_KEYS. Put the new key first, run this, then remove the old key. "
        "Payloads themselves are never re-encrypted: only the wrapped key in each header changes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--secrets-only", action="store_true", help="Leave the payloads' keys as they are."
        )

    def handle(self, *args, secrets_only=False, **options):
        self._rotate_secrets()
        if not secrets_only:
            self._rewrap_payloads()

    @transaction.atomic
    def _rotate_secrets(self):
        total = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if isinstance(field, EncryptedTextField):
                    count = field.rotate_column(model)
                    total += count
                    self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
        record(
            actor=Actor.command(), action="secrets.rotated", detail=f"{total} secrets re-encrypted"
        )
        self.stdout.write(self.style.SUCCESS(f"{total} secrets now use the newest key."))

    def _rewrap_payloads(self):
        """Each payload's header rewritten whole (the segments copied as they are); resumable."""
        rewrapped = current = plain = failed = 0
        for name in payloads.store().names():
            try:
                if payloads.rewrap(name):
                    rewrapped += 1
                elif payloads.is_stored_encrypted(name):
                    current += 1
                else:
                    plain += 1
            except (OSError, payloads.PayloadUnreadable) as exc:
                failed += 1
                self.stderr.write(f"{name}: key not re-wrapped ({type(exc).__name__}: {exc})")
        summary = (
            f"{rewrapped} payload keys re-wrapped, {current} already current, {plain} plain "
            f"(run encrypt_payloads), {failed} failed"
        )
        record(actor=Actor.command(), action="payloads.keys_rewrapped", detail=summary)
        style = self.style.ERROR if failed else self.style.SUCCESS
        self.stdout.write(style(summary + "."))
        if failed:
            raise SystemExit(1)
