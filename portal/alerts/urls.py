from django.urls import path

from . import views

app_name = "alerts"
urlpatterns = [
    path("", views.inbox_view, name="inbox"),
    path("<int:pk>/acknowledge", views.acknowledge_view, name="acknowledge"),
    path("<int:pk>/snooze", views.snooze_view, name="snooze"),
]
