from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.audit.services import Actor, record
from portal.lib.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEYS. Put the new key "
        "first, run this, then remove the old key."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if isinstance(field, EncryptedTextField):
                    count = field.rotate_column(model)
                    total += count
                    self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
        record(actor=Actor.command(), action="secrets.rotated", detail=f"{total} secrets re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} secrets now use the newest key."))
