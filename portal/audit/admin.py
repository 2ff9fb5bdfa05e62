from __future__ import annotations

from django.contrib import admin

from portal.lib.admin import ReadOnlyAdmin

from .models import AuditRecord, Verification


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """Append-only: the admin can read the chain, never add, change or delete a record."""

    list_display = ("seq", "at", "actor_label", "action", "object_type", "object_repr")
    list_filter = ("action", "actor_kind")
    search_fields = ("actor_label", "object_id")
    show_full_result_count = False


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdmin):
    list_display = ("at", "ok", "records_checked", "first_broken_seq")
