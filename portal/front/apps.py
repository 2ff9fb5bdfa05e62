from django.apps import AppConfig


class FrontConfig(AppConfig):
    """The top layer: pages that compose several apps (docs/architecture.md)."""

    name = "portal.front"
    label = "front"
