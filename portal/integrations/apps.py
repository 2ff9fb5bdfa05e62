from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "portal.integrations"
    label = "integrations"
    verbose_name = "Routes, destinations and deliveries"

    def ready(self) -> None:
        from portal.events import consumers

        from .services import deliveries_plan_for_event

        # Messaging emits `message.received` when a data message is stored and `message.ndr` when
        # a report is (REPORT routes); it never imports this app.
        # From the first event: a message received before the dispatcher first ran (just after
        # deploying) is routed too, not left held for the API. Planning is idempotent.
        consumers.register(
            "integrations",
            deliveries_plan_for_event,
            kinds={"message.received", "message.ndr"},
            from_start=True,
        )
