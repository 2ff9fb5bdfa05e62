from django.contrib import admin

from .models import Event, EventCursor


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "kind", "severity", "summary", "problem_key", "resolves"]
    list_filter = ["severity", "kind"]
    search_fields = ["summary", "problem_key"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EventCursor)
class EventCursorAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seq", "failures", "retry_at", "last_error"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
