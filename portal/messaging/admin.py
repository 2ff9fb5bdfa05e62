from __future__ import annotations

from django.contrib import admin

from portal.lib.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import InboundFailure, Message, MessageEvent


class MessageEventInline(ReadOnlyInline):
    model = MessageEvent
    fields = ("at", "kind", "chunk", "detail", "actor")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "mailbox", "direction", "status", "workflow_id", "created_at")
    list_filter = ("direction", "status", "message_type")
    search_fields = ("mesh_message_id", "local_id")
    list_select_related = ("mailbox",)
    show_full_result_count = False
    inlines = [MessageEventInline]


@admin.register(InboundFailure)
class InboundFailureAdmin(ReadOnlyAdmin):
    list_display = ("mesh_message_id", "mailbox", "status", "failures", "last_failed_at")
    list_filter = ("status",)
    search_fields = ("mesh_message_id",)
    list_select_related = ("mailbox",)
