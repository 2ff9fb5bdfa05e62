from django.urls import path

from . import views

app_name = "mailboxes"
urlpatterns = [
    path("", views.mailbox_list, name="list"),
    path("new/", views.mailbox_create, name="create"),
    path("<int:pk>/", views.mailbox_detail, name="detail"),
    path("<int:pk>/edit/", views.mailbox_edit, name="edit"),
    path("<int:pk>/handshake/", views.mailbox_handshake, name="handshake"),
    path("<int:pk>/poll/", views.mailbox_poll, name="poll"),
    path("<int:pk>/workflows/", views.workflow_add, name="workflow_add"),
    path(
        "<int:pk>/workflows/<int:workflow_pk>/remove/",
        views.workflow_remove,
        name="workflow_remove",
    ),
    path("organisations/", views.organisation_list, name="organisations"),
    path("organisations/new/", views.organisation_create, name="organisation_create"),
]
