from __future__ import annotations

from django.contrib import admin, messages

from portal.lib.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import InboundFailure, LegalHold, Message, MessageEvent, RetentionRule


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


@admin.register(RetentionRule)
class RetentionRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "mailbox",
        "direction",
        "workflow_pattern",
        "keep_days",
        "clock",
        "enabled",
    )
    list_filter = ("enabled", "direction", "clock")
    actions = ["preview"]

    @admin.action(description="Dry run: list what the selected rules would purge now")
    def preview(self, request, queryset):
        from .retention import retention_sweep

        for rule in queryset:
            would = retention_sweep(dry_run=True, rule=rule)["would_purge"]
            shown = ", ".join(f"#{message.pk}" for message, _ in would[:50])
            more = f" and {len(would) - 50} more" if len(would) > 50 else ""
            self.message_user(
                request,
                f"Rule “{rule.name}” would purge {len(would)} payloads now"
                + (f": messages {shown}{more}." if would else "."),
                messages.INFO,
            )


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    list_display = ("__str__", "reason", "created_by", "created_at", "released_at")
    list_filter = ("released_at",)
    raw_id_fields = ("message",)
    readonly_fields = ("created_by", "created_at", "released_by")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        elif obj.released_at and not obj.released_by_id:
            obj.released_by = request.user
        super().save_model(request, obj, form, change)
