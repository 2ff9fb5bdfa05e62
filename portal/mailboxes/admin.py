from __future__ import annotations

from django.contrib import admin

from .models import Mailbox, Organisation, Recipient, Workflow

HEALTH = (
    "last_handshake_at",
    "last_handshake_ok",
    "last_handshake_ms",
    "last_poll_at",
    "last_poll_ok",
    "inbox_backlog",
    "last_error",
    "last_error_at",
    "poll_claimed_at",
    "poll_claimed_by",
    "poll_requested_at",
    "password_changed_at",
    "shared_key_changed_at",
    "created_at",
    "updated_at",
)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "ods_code", "created_at")
    search_fields = ("name", "ods_code")


class WorkflowInline(admin.TabularInline):
    model = Workflow
    extra = 0


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    """Secrets are set on the portal's mailbox page (write-only there); the admin never shows them."""

    list_display = (
        "mailbox_id",
        "environment",
        "organisation",
        "enabled",
        "last_handshake_at",
        "last_poll_at",
    )
    list_filter = ("environment", "enabled")
    search_fields = ("mailbox_id", "name")
    exclude = ("password", "shared_key")
    readonly_fields = HEALTH
    inlines = [WorkflowInline]


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    """Recipients NeoMesh sends to that need special treatment (no chunked messages)."""

    list_display = ("mailbox_id", "name", "accepts_chunked", "updated_at")
    list_filter = ("accepts_chunked",)
    search_fields = ("mailbox_id", "name")
