from django.urls import path

from . import views

app_name = "messaging"
urlpatterns = [
    path("", views.message_list, name="list"),
    path("export.csv", views.message_export, name="export"),
    path("send/", views.message_send_view, name="send"),
    path("send/many/", views.message_send_bulk_view, name="send_bulk"),
    path("send/lookup/", views.recipient_lookup, name="lookup"),
    path("<int:pk>/", views.message_detail, name="detail"),
    path("<int:pk>/payload/", views.message_download, name="download"),
    path("<int:pk>/resend/", views.message_resend, name="resend"),
    path("<int:pk>/track/", views.message_track, name="track"),
    path("<int:pk>/fix/", views.message_fix, name="fix"),
    path("inbound-failures/<int:pk>/", views.inbound_failure_act, name="inbound_failure"),
]
