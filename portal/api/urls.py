from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from portal.lib.bodylimit import checks_own_body
from portal.lib.crosssite import same_site_only

from . import views
from .views import audited

app_name = "api"
urlpatterns = [
    # The send refuses an over-long Content-Length itself, before reading (portal/api/sending.py).
    path("v1/messages/", checks_own_body(audited(views.messages)), name="messages"),
    path("v1/messages/<int:pk>/", audited(views.message), name="message"),
    # An audited download a signed-in browser could be made to fetch: never for another site.
    path("v1/messages/<int:pk>/payload/", same_site_only(audited(views.payload)), name="payload"),
    path("v1/messages/<int:pk>/confirm/", audited(views.confirm), name="confirm"),
    path("v1/events/", audited(views.events), name="events"),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^.*$", views.not_found),
]
