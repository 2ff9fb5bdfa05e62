from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MessagingConfig(AppConfig):
    name = "portal.messaging"
    label = "messaging"

    def ready(self) -> None:
        from portal.lib.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="neomesh_schedules")
