from django.contrib import admin
from django.urls import include, path

from portal.front.urls import mailbox_pages
from portal.lib.notfound import favicon
from portal.mailboxes.urls import urlpatterns as mailbox_admin_pages

urlpatterns = [
    path("", include("portal.front.urls")),
    path("accounts/", include("portal.accounts.urls")),
    # One namespace, two layers: the composing pages (portal.front) and the mailboxes app's own.
    path("mailboxes/", include(([*mailbox_pages, *mailbox_admin_pages], "mailboxes"))),
    path("messages/", include("portal.messaging.urls")),
    path("certificates/", include("portal.certificates.urls")),
    path("onboarding/", include("portal.onboarding.urls")),
    path("conformance/", include("portal.conformance.urls")),
    path("audit/", include("portal.audit.urls")),
    path("alerts/", include("portal.alerts.urls")),
    path("integrations/", include("portal.integrations.urls")),
    # Browsers ask for /favicon.ico where a page names no icon (the admin's, downloads).
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("api/", include("portal.api.urls")),
    path("api-tokens/", include("portal.api.page_urls")),
    # /healthz and /metrics for load balancers and Prometheus (portal.ops).
    path("", include("portal.ops.urls")),
]
