from django.contrib import admin, messages

from . import services
from .forms import ChannelForm, RuleForm
from .models import Alert, Channel, Notification, Rule


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "enabled", "failing_since", "last_sent_at", "last_error"]
    readonly_fields = ["failing_since", "last_error", "last_sent_at"]
    actions = ["send_test_alert"]

    @admin.action(description="Send a test alert")
    def send_test_alert(self, request, queryset):
        for channel in queryset:
            services.channel_send_test(channel=channel, request=request)
        messages.success(
            request, f"Test alert queued for {queryset.count()} channel(s); the workers send it."
        )


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "enabled", "min_severity", "mailbox", "workflow", "digest"]
    filter_horizontal = ["channels"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "severity", "kind", "summary", "resolved_at", "acknowledged_at"]
    list_filter = ["severity", "kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "purpose", "status", "attempts", "last_error"]
    list_filter = ["status", "purpose"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
