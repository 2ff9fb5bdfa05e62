from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "portal.alerts"
    label = "alerts"

    def ready(self) -> None:
        from portal.events import consumers

        from .services import alert_handle_event

        consumers.register("alerts", alert_handle_event)
