from django.urls import path

from . import views

app_name = "mailboxes"
# The list, detail, handshake and poll pages are portal.front's, in this namespace (portal/urls.py).
urlpatterns = [
    path("new/", views.mailbox_create, name="create"),
    path("<int:pk>/edit/", views.mailbox_edit, name="edit"),
    path("<int:pk>/workflows/", views.workflow_add, name="workflow_add"),
    path(
        "<int:pk>/workflows/<int:workflow_pk>/remove/",
        views.workflow_remove,
        name="workflow_remove",
    ),
    path("organisations/", views.organisation_list, name="organisations"),
    path("organisations/new/", views.organisation_create, name="organisation_create"),
]
