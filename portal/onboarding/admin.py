"""Read-only admin: plans are worked on the onboarding pages, where the rules and the audit apply."""

from __future__ import annotations

from django.contrib import admin

from portal.lib.admin import ReadOnlyAdmin

from .models import AllowListEntry, Correspondence, Decision, Evidence, GateOverride, Plan, Task


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = ("title", "organisation", "environment", "template_key", "template_version")
    list_filter = ("environment", "template_key")


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("ref", "title", "plan", "status", "owner", "due_date", "required")
    list_filter = ("status", "required")
    search_fields = ("title", "key")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("question", "plan", "chosen", "recorded_by", "recorded_at")


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ("title", "plan", "kind", "original_filename", "review_date", "uploaded_at")
    list_filter = ("kind",)


@admin.register(Correspondence)
class CorrespondenceAdmin(ReadOnlyAdmin):
    list_display = ("subject", "plan", "kind", "status", "sent_at", "ticket_reference")
    list_filter = ("kind", "status")


@admin.register(AllowListEntry)
class AllowListEntryAdmin(ReadOnlyAdmin):
    list_display = ("network", "organisation", "environment", "purpose")


@admin.register(GateOverride)
class GateOverrideAdmin(ReadOnlyAdmin):
    list_display = ("mailbox", "created_by", "created_at", "revoked_at")
