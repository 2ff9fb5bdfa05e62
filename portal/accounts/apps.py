from django.apps import AppConfig
from django.core.checks import register
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects the lockout record
        from .roles import ensure_roles_after_migrate
        from .sso import check_settings

        register(check_settings)

        post_migrate.connect(ensure_roles_after_migrate, dispatch_uid="neomesh_ensure_roles")
