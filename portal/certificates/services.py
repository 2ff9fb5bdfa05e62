"""Certificate services: make a key and CSR, install the issued certificate, watch expiry."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from meshcore import MeshError
from meshcore import certificates as mc_certs
from portal.audit.services import Actor, record
from portal.events.services import event_emit
from portal.mailboxes.models import Mailbox

from .models import Certificate
from .signals import csr_created


class CertificateRejected(Exception):
    """An issued certificate cannot be installed; the message says why in plain English."""


def expected_cn(mailbox: Mailbox) -> str:
    return mc_certs.expected_cn(mailbox.mailbox_id, mailbox.organisation.ods_code)


@transaction.atomic
def certificate_create_csr(
    *, mailbox: Mailbox, actor: Actor | None = None, key_size: int = 2048
) -> Certificate:
    """A new private key (kept encrypted) and a CSR whose subject is exactly the MESH CN.

    Audited `certificate.csr_created` as `actor`, in the same transaction (no actor: no record).
    """
    key_pem, csr_pem = mc_certs.generate_csr(
        mailbox.mailbox_id, mailbox.organisation.ods_code, key_size=key_size
    )
    certificate = Certificate.objects.create(
        mailbox=mailbox,
        common_name=expected_cn(mailbox),
        private_key=key_pem.decode(),
        csr_pem=csr_pem.decode(),
        created_by=actor.user if actor else None,
    )
    if actor is not None:
        record(actor=actor, action="certificate.csr_created", obj=certificate)
    csr_created.send(sender=Certificate, certificate=certificate)
    return certificate


def _split_chain(pem: str) -> tuple[str, str]:
    """The leaf certificate and the rest of the chain, as PEM text."""
    marker = "-----END CERTIFICATE-----"
    leaf, _, rest = pem.strip().partition(marker)
    rest = rest.strip()
    return leaf.strip() + "\n" + marker + "\n", rest + "\n" if rest else ""


def check_issued_certificate(certificate: Certificate, pem: str, now=None):
    """Parse and check an issued certificate against this CSR's key and CN; returns its details."""
    try:
        details = mc_certs.inspect_certificate(pem.encode())
        matches = mc_certs.certificate_matches_key(pem.encode(), certificate.private_key.encode())
    except MeshError as exc:
        raise CertificateRejected(
            f"The certificate cannot be read: {exc.description or exc}"
        ) from None
    if details.common_name != certificate.common_name:
        raise CertificateRejected(
            f"The certificate is for CN {details.common_name!r}, but this CSR asked for "
            f"{certificate.common_name!r}."
        )
    if not matches:
        raise CertificateRejected("The certificate does not match this CSR's private key.")
    if details.not_after <= (now or timezone.now()):
        raise CertificateRejected(f"The certificate expired on {details.not_after:%d %B %Y}.")
    leaf_pem, chain_pem = _split_chain(pem)
    return details, leaf_pem, chain_pem


@transaction.atomic
def certificate_install(
    *, certificate: Certificate, pem: str, ticket: str = "", actor: Actor | None = None
) -> Certificate:
    """Install the issued certificate and make it the mailbox's active one."""
    if certificate.status != Certificate.Status.AWAITING:
        raise CertificateRejected("This certificate is already installed; make a new CSR to renew.")
    details, leaf_pem, chain_pem = check_issued_certificate(certificate, pem)
    # The conditional update below is not seen by django-auditlog: record each superseded one.
    old = Certificate.objects.defer("private_key").active_for(certificate.mailbox)
    if old is not None:  # one at most (the one_active_certificate constraint)
        record(
            action="certificate.superseded",
            actor=actor or Actor.system(),
            obj=old,
            changes={"status": ["active", "superseded"]},
        )
        if old.expiry_warned_days is not None:
            event_emit(
                kind="certificate.replaced",
                severity="info",
                mailbox_id=old.mailbox_id,
                summary=f"The expiring certificate of {certificate.mailbox.mailbox_id} was replaced.",
                data={"common_name": old.common_name, "serial": old.serial},
            )
    Certificate.objects.filter(
        mailbox=certificate.mailbox, status=Certificate.Status.ACTIVE
    ).update(status=Certificate.Status.SUPERSEDED)
    certificate.certificate_pem, certificate.chain_pem = leaf_pem, chain_pem
    certificate.serial, certificate.issuer = details.serial, details.issuer
    certificate.not_before, certificate.not_after = details.not_before, details.not_after
    certificate.status, certificate.installed_at = Certificate.Status.ACTIVE, timezone.now()
    if ticket:
        certificate.service_desk_ticket = ticket
    certificate.save()
    if actor is not None:
        record(
            actor=actor,
            action="certificate.installed",
            obj=certificate,
            detail=f"serial {details.serial}, expires {details.not_after:%Y-%m-%d}",
        )
    return certificate


def certificates_check_expiry(now=None) -> dict[str, int]:
    """Mark expired certificates and count the ones inside the warning window."""
    now = now or timezone.now()
    expired = 0
    for certificate in (
        Certificate.objects.active().filter(not_after__lte=now).select_related("mailbox")
    ):
        with transaction.atomic():
            # Conditional, so two overlapping runs mark and audit each certificate once.
            if Certificate.objects.filter(
                pk=certificate.pk, status=Certificate.Status.ACTIVE
            ).update(status=Certificate.Status.EXPIRED):
                record(actor=Actor.worker(), action="certificate.expired", obj=certificate)
                event_emit(
                    kind="certificate.expired",
                    severity="critical",
                    summary=(
                        f"The certificate of {certificate.mailbox.mailbox_id} "
                        f"({certificate.common_name}) expired on {certificate.not_after:%d %B %Y}: "
                        "MESH refuses the mailbox until a new one is installed."
                    ),
                    mailbox_id=certificate.mailbox_id,
                    problem_key=f"certificate:{certificate.pk}:expired",
                    data=_certificate_data(certificate),
                )
                expired += 1
    for certificate in (
        Certificate.objects.expiring(now=now).select_related("mailbox").defer("private_key")
    ):
        _warn_expiring(certificate, now)
    warning = Certificate.objects.expiring(now=now).count()
    return {"expired": expired, "expiring": warning}


def _certificate_data(certificate: Certificate) -> dict:
    return {
        "mailbox": certificate.mailbox.mailbox_id,
        "common_name": certificate.common_name,
        "serial": certificate.serial,
        "not_after": certificate.not_after.isoformat(),
    }


def _warn_expiring(certificate: Certificate, now) -> bool:
    """One event as each threshold (90, 30, 14, 7, 1 days) is crossed; a skipped one is not repeated."""
    threshold = certificate.expiry_threshold(now)
    if threshold is None:
        return False
    with transaction.atomic():
        # Conditional: a threshold already warned (or a smaller one) is never warned again.
        fresh = Q(expiry_warned_days__isnull=True) | Q(expiry_warned_days__gt=threshold)
        if (
            not Certificate.objects.filter(pk=certificate.pk)
            .filter(fresh)
            .update(expiry_warned_days=threshold)
        ):
            return False
        days = certificate.days_left(now)
        event_emit(
            kind="certificate.expiring",
            severity="error" if threshold <= 7 else "warning",
            summary=(
                f"The certificate of {certificate.mailbox.mailbox_id} ({certificate.common_name}) "
                f"expires on {certificate.not_after:%d %B %Y}, in {days} day{'s' if days != 1 else ''}: "
                "request a renewal now (NHS England takes up to 5 working days)."
            ),
            mailbox_id=certificate.mailbox_id,
            problem_key=f"certificate:{certificate.pk}:expiring:{threshold}",
            data={**_certificate_data(certificate), "threshold_days": threshold, "days_left": days},
        )
    return True
