"""The Django admin is for superusers only: staff flags and model permissions are not enough."""

from __future__ import annotations

from django.contrib import admin


def _superusers_only(request) -> bool:
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _superusers_only
admin.site.site_header = "NeoMesh administration"
admin.site.site_title = "NeoMesh admin"
