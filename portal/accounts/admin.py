"""The Django admin is for superusers only: staff flags and model permissions are not enough.

django-axes' sign-in records are shown here too: the failure and access logs read-only, and the
attempts deletable (that is how a lockout is lifted early), each deletion audited.
"""

from __future__ import annotations

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin

from portal.audit.services import Actor, record

from .models import Membership


def _superusers_only(request) -> bool:
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _superusers_only
admin.site.site_header = "NeoMesh administration"
admin.site.site_title = "NeoMesh admin"


def _audit_cleared(request, attempts) -> None:
    for attempt in attempts:
        record(
            actor=Actor.person(request),
            action="auth.lockout_cleared",
            obj=attempt,
            detail=f"Sign-in failures of {attempt.username!r} from {attempt.ip_address} cleared "
            f"({attempt.failures_since_start} failures)",
        )


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    def delete_model(self, request, obj):
        _audit_cleared(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        _audit_cleared(request, list(queryset))
        super().delete_queryset(request, queryset)

    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        count = self.handler.clean_expired_user_attempts(request=request)
        record(
            actor=Actor.person(request),
            action="auth.expired_attempts_cleaned",
            detail=f"{count} expired attempts",
        )
        self.message_user(request, f"Cleaned up {count} expired access attempts.")


class AccessLogAdmin(axes_admin.AccessLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for model, model_admin in (
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation"]
    list_filter = ["organisation"]
    raw_id_fields = ["user"]
    filter_horizontal = ["mailboxes"]
