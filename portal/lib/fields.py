"""Model fields that keep secrets encrypted at rest."""

from __future__ import annotations

from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    """A text secret stored as a Fernet token. Empty stays empty (meaning "not set").

    The decrypted value is only ever in memory; forms must never render it back (use
    `PasswordInput(render_value=False)` write-only fields, as `MailboxForm` does), and audit records
    mask it.
    """

    description = "Encrypted text"

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return crypto.decrypt(value).decode("utf-8")

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return crypto.encrypt(value.encode("utf-8"))

    def rotate_column(self, model) -> int:
        """Re-encrypt every stored value of this field with the newest key; returns rows changed.

        Loading decrypts with whichever configured key works; saving encrypts with the first.
        """
        changed = 0
        for pk, value in model.objects.exclude(**{self.attname: ""}).values_list(
            "pk", self.attname
        ):
            if value:
                changed += model.objects.filter(pk=pk).update(**{self.attname: value})
        return changed
