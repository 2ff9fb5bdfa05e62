from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "portal.audit"
    label = "audit"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects signal handlers)
        from .registry import register_models

        register_models()
