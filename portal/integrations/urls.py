from django.urls import path

from . import views

app_name = "integrations"
urlpatterns = [
    path("", views.integration_list, name="list"),
    path("destinations/new/", views.destination_edit, name="destination_new"),
    path("destinations/<int:pk>/", views.destination_edit, name="destination_edit"),
    path("destinations/<int:pk>/test/", views.destination_test_view, name="destination_test"),
    path("routes/new/", views.route_edit, name="route_new"),
    path("routes/<int:pk>/", views.route_edit, name="route_edit"),
    path("routes/<int:pk>/replay/", views.route_replay_view, name="route_replay"),
    path("payloads/<str:token>/", views.payload_link_view, name="payload_link"),
    path("deliveries/<int:pk>/replay/", views.delivery_replay_view, name="delivery_replay"),
]
