from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("portal.dashboard.urls")),
    path("accounts/", include("portal.accounts.urls")),
    path("mailboxes/", include("portal.mailboxes.urls")),
    path("messages/", include("portal.messaging.urls")),
    path("certificates/", include("portal.certificates.urls")),
    path("onboarding/", include("portal.onboarding.urls")),
    path("conformance/", include("portal.conformance.urls")),
    path("audit/", include("portal.audit.urls")),
    path("alerts/", include("portal.alerts.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("portal.api.urls")),
    path("api-tokens/", include("portal.api.page_urls")),
    # /healthz and /metrics for load balancers and Prometheus (portal.ops).
    path("", include("portal.ops.urls")),
]
