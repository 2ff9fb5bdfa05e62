from __future__ import annotations

import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.audit.services import Actor, record
from portal.lib.bodylimit import body_limit
from portal.lib.crosssite import same_site_only
from portal.lib.forms import TEXT_UPLOAD_MAX_BYTES
from portal.lib.http import permission_required
from portal.mailboxes.models import Mailbox

from . import services
from .forms import CertificateFilterForm, InstallForm, TicketForm
from .models import WARN_WITHIN_DAYS, Certificate


def _get_certificate_for_user(request, pk: int) -> Certificate:
    """A certificate within the person's reach, else 404; the private key is never loaded."""
    queryset = Certificate.objects.within_reach(request.user).select_related(
        "mailbox", "mailbox__organisation", "created_by"
    )
    return get_object_or_404(queryset.defer("private_key"), pk=pk)


@permission_required("certificates.view_certificate")
def certificate_list(request):
    filters = CertificateFilterForm(request.GET or None, user=request.user)
    certificates = (
        Certificate.objects.within_reach(request.user)
        .select_related("mailbox")
        .defer("private_key", "csr_pem")
    )
    if filters.is_valid():
        if filters.cleaned_data["status"]:
            certificates = certificates.filter(status=filters.cleaned_data["status"])
        if filters.cleaned_data["expiring"]:
            certificates = certificates.expiring()
    page = Paginator(certificates.order_by("not_after", "-created_at"), 50).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "querystring_base": query.urlencode(),
        "mailboxes": Mailbox.objects.within_reach(request.user).order_by("mailbox_id"),
        "warn_within": WARN_WITHIN_DAYS,
    }
    return render(request, "certificates/list.html", context)


@permission_required("certificates.add_certificate")
def certificate_create_csr_view(request, mailbox_pk: int):
    """GET asks for confirmation (showing the CN); POST from that page makes a new key and CSR.

    A POST without the confirmation page's `confirmed` field (a button elsewhere, an old form)
    only shows the confirmation page: nothing is made without it, on a LIVE mailbox above all.
    """
    mailboxes = Mailbox.objects.within_reach(request.user).select_related("organisation")
    mailbox = get_object_or_404(mailboxes, pk=mailbox_pk)
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        certificate = services.certificate_create_csr(mailbox=mailbox, actor=Actor.person(request))
        messages.success(
            request, "Key and CSR made. Download the CSR and send it to the service desk."
        )
        return redirect("certificates:detail", pk=certificate.pk)
    context = {"mailbox": mailbox, "common_name": services.expected_cn(mailbox)}
    return render(request, "certificates/create_csr.html", context)


def _render_detail(
    request, certificate: Certificate, install_form=None, ticket_form=None, status=200
):
    history = certificate.mailbox.certificates.defer("private_key", "csr_pem").order_by(
        "created_at"
    )
    context = {
        "certificate": certificate,
        "days_left": certificate.days_left(),
        "install_form": install_form or InstallForm(user=request.user),
        "ticket_form": ticket_form or TicketForm(instance=certificate, user=request.user),
        "history": history,
        "now": timezone.now(),
    }
    return render(request, "certificates/detail.html", context, status=status)


@permission_required("certificates.view_certificate")
def certificate_detail(request, pk: int):
    return _render_detail(request, _get_certificate_for_user(request, pk))


def csr_filename(certificate: Certificate) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", certificate.common_name)[:150] + ".csr"


@permission_required("certificates.view_certificate")
@same_site_only
def certificate_download_csr(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    record(actor=Actor.person(request), action="certificate.csr_downloaded", obj=certificate)
    response = HttpResponse(certificate.csr_pem, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{csr_filename(certificate)}"'
    return response


@body_limit(lambda: TEXT_UPLOAD_MAX_BYTES)
@permission_required("certificates.change_certificate")
@require_POST
def certificate_install_view(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    form = InstallForm(request.POST, request.FILES, user=request.user)
    if form.is_valid():
        try:
            # The service needs the private key to match against: load the full row.
            full = Certificate.objects.select_related("mailbox").get(pk=certificate.pk)
            services.certificate_install(
                certificate=full,
                pem=form.cleaned_data["pem"],
                actor=Actor.person(request),
            )
        except services.CertificateRejected as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"Certificate installed: {certificate.mailbox.mailbox_id} now uses it."
            )
            return redirect("certificates:detail", pk=certificate.pk)
    return _render_detail(request, certificate, install_form=form, status=400)


@permission_required("certificates.change_certificate")
@require_POST
def certificate_ticket(request, pk: int):
    certificate = _get_certificate_for_user(request, pk)
    form = TicketForm(request.POST, instance=certificate, user=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, "Service desk ticket saved.")
        return redirect("certificates:detail", pk=certificate.pk)
    return _render_detail(request, certificate, ticket_form=form, status=400)
