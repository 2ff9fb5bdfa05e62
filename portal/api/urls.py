from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from . import views
from .views import audited

app_name = "api"
urlpatterns = [
    path("v1/messages/", audited(views.messages), name="messages"),
    path("v1/messages/<int:pk>/", audited(views.message), name="message"),
    path("v1/messages/<int:pk>/payload/", audited(views.payload), name="payload"),
    path("v1/messages/<int:pk>/confirm/", audited(views.confirm), name="confirm"),
    path("v1/events/", audited(views.events), name="events"),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^.*$", views.not_found),
]
