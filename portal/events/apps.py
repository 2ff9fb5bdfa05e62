from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "portal.events"
    label = "events"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects signal handlers)
