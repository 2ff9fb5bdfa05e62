from __future__ import annotations

from django.contrib import admin

from portal.lib.admin import ReadOnlyAdmin

from .models import Certificate


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    """Never shows the private key; certificates are made and installed on the portal's pages."""

    list_display = ("common_name", "mailbox", "status", "not_after", "service_desk_ticket")
    list_filter = ("status",)
    search_fields = ("common_name", "serial", "service_desk_ticket")
    exclude = ("private_key",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("private_key")
