from __future__ import annotations

from django.contrib import admin

from portal.lib.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import ConformanceRun, ScenarioResult


class ScenarioResultInline(ReadOnlyInline):
    model = ScenarioResult
    fields = ("position", "ref", "title", "outcome", "reason", "duration_ms")


@admin.register(ConformanceRun)
class ConformanceRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "environment", "status", "summary", "started_by_label", "created_at")
    list_filter = ("status", "environment")
    list_select_related = ("mailbox", "peer")
    inlines = [ScenarioResultInline]
