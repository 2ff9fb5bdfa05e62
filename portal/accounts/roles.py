"""Roles are Django groups with permissions, created idempotently after every migrate."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import transaction

ONBOARDING_LEAD = "Onboarding lead"
MAILBOX_ADMIN = "Mailbox admin"
AUDITOR = "Auditor"

# Mailbox admins and auditors follow go-live plans read-only.
ONBOARDING_VIEW = [
    "onboarding.view_plan",
    "onboarding.view_task",
    "onboarding.view_decision",
    "onboarding.view_evidence",
    "onboarding.view_correspondence",
    "onboarding.view_allowlistentry",
    "onboarding.view_gateoverride",
]

# Mailbox admins and onboarding leads run the conformance self-test (only admins on live mailboxes);
# auditors read the runs and their evidence.
CONFORMANCE_RUN = ["conformance.view_conformancerun", "conformance.add_conformancerun"]

# Mailbox admins define where received messages go on to and replay what failed; auditors read.
INTEGRATIONS_VIEW = [
    "integrations.view_route",
    "integrations.view_destination",
    "integrations.view_delivery",
]

# app_label.codename; names for apps that are not installed yet are ignored.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    MAILBOX_ADMIN: [
        "mailboxes.view_organisation",
        "mailboxes.add_organisation",
        "mailboxes.change_organisation",
        "mailboxes.view_mailbox",
        "mailboxes.add_mailbox",
        "mailboxes.change_mailbox",
        "mailboxes.view_workflow",
        "mailboxes.add_workflow",
        "mailboxes.change_workflow",
        "mailboxes.delete_workflow",
        "certificates.view_certificate",
        "certificates.add_certificate",
        "certificates.change_certificate",
        "messaging.view_message",
        "messaging.send_message",
        "messaging.download_payload",
        "messaging.change_message",
        *ONBOARDING_VIEW,
        "onboarding.override_gate",
        *CONFORMANCE_RUN,
        "conformance.run_on_live",
        "api.view_apitoken",
        "api.add_apitoken",
        "api.change_apitoken",
        *INTEGRATIONS_VIEW,
        "integrations.add_destination",
        "integrations.change_destination",
        "integrations.add_route",
        "integrations.change_route",
        "integrations.change_delivery",
    ],
    ONBOARDING_LEAD: [
        "mailboxes.view_organisation",
        "mailboxes.view_mailbox",
        "mailboxes.view_workflow",
        "certificates.view_certificate",
        "onboarding.view_plan",
        "onboarding.add_plan",
        "onboarding.change_plan",
        "onboarding.view_task",
        "onboarding.change_task",
        "onboarding.view_decision",
        "onboarding.change_decision",
        "onboarding.view_evidence",
        "onboarding.add_evidence",
        "onboarding.view_correspondence",
        "onboarding.add_correspondence",
        "onboarding.change_correspondence",
        "onboarding.view_allowlistentry",
        "onboarding.add_allowlistentry",
        "onboarding.change_allowlistentry",
        "onboarding.delete_allowlistentry",
        "onboarding.view_gateoverride",
        *CONFORMANCE_RUN,
    ],
    AUDITOR: [
        "mailboxes.view_organisation",
        "mailboxes.view_mailbox",
        "mailboxes.view_workflow",
        "certificates.view_certificate",
        "messaging.view_message",
        "audit.view_auditrecord",
        "audit.export_auditrecord",
        "audit.view_verification",
        "audit.run_verification",  # run the chain verification now, from the audit pages
        *ONBOARDING_VIEW,
        "conformance.view_conformancerun",
        *INTEGRATIONS_VIEW,
    ],
}


@transaction.atomic
def ensure_roles(**_kwargs) -> None:
    existing = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([existing[dotted] for dotted in perms if dotted in existing])


def ensure_roles_after_migrate(app_config, **_kwargs) -> None:
    """post_migrate is sent once per app (after every migrate and test-database flush); roles need
    every app's permissions, which all exist by the signal of the last app with models."""
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if app_config.label == with_models[-1].label:
        ensure_roles()


def role_names(user) -> list[str]:
    if user.is_superuser:
        return ["Superuser"]
    return list(user.groups.values_list("name", flat=True))
