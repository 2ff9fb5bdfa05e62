from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.trail, name="trail"),
    path("export.csv", views.trail_export, name="export"),
    path("verify/", views.verify_now, name="verify"),
    path("<int:seq>/", views.record_detail, name="detail"),
]
