from django.urls import path

from . import views

app_name = "conformance"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_new, name="new"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/report/", views.run_report, name="report"),
    path("<int:pk>/evidence.zip", views.run_evidence, name="evidence"),
]
