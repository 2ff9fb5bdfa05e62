from django.urls import path

from . import views

app_name = "certificates"
urlpatterns = [
    path("", views.certificate_list, name="list"),
    path("new/<int:mailbox_pk>/", views.certificate_create_csr_view, name="create_csr"),
    path("<int:pk>/", views.certificate_detail, name="detail"),
    path("<int:pk>/csr/", views.certificate_download_csr, name="download_csr"),
    path("<int:pk>/install/", views.certificate_install_view, name="install"),
    path("<int:pk>/ticket/", views.certificate_ticket, name="ticket"),
]
