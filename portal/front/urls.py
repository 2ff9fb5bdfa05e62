from django.urls import path

from . import views

app_name = "dashboard"
urlpatterns = [path("", views.home, name="home")]

# The mailbox pages that compose several apps: served in the mailboxes namespace beside that app's
# own pages (portal/urls.py), so their URLs and names are the mailboxes' as before.
mailbox_pages = [
    path("", views.mailbox_list, name="list"),
    path("<int:pk>/", views.mailbox_detail, name="detail"),
    path("<int:pk>/handshake/", views.mailbox_handshake_view, name="handshake"),
    path("<int:pk>/poll/", views.mailbox_poll_view, name="poll"),
]
