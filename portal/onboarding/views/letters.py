"""Correspondence with NHS England: drafts written from the plan, .eml downloads, sent and replied."""

from __future__ import annotations

from email.utils import formataddr

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.audit.services import Actor, record
from portal.lib.crosssite import same_site_only
from portal.lib.http import permission_required

from .. import correspondence as letters
from ..errors import OnboardingError
from ..forms import CorrespondenceForm, ReplyForm, SentForm
from ..models import Correspondence, CorrespondenceKind
from ._access import get_letter, get_plan


def _render_letter(
    request, plan, letter, *, form=None, sent_form=None, reply_form=None, status=200
):
    context = {
        "plan": plan,
        "letter": letter,
        "form": form or CorrespondenceForm(instance=letter, user=request.user),
        "sent_form": sent_form
        or SentForm(initial={"ticket_reference": letter.ticket_reference}, user=request.user),
        "reply_form": reply_form
        or ReplyForm(initial={"ticket_reference": letter.ticket_reference}, user=request.user),
        "attachments": letter.attachments.all(),
        "missing": letters.missing_attachments(letter),
        "withdrawn": letters.withdrawn_attachments(letter),
        "today": timezone.localdate(),
        # An email asking a decision's question: its reply is recorded once, with the answer.
        "open_decision": letter.task
        and letter.task.plan.decisions.filter(answers=letter.task, chosen="").first(),
    }
    return render(request, "onboarding/letter.html", context, status=status)


@permission_required("onboarding.add_correspondence")
@require_POST
def letter_create(request, pk: int):
    plan = get_plan(request, pk)
    kind = request.POST.get("kind", "")
    if kind not in CorrespondenceKind.values:
        messages.error(request, "Choose which email to write.")
        return redirect("onboarding:detail", pk=plan.pk)
    letter = letters.correspondence_draft(plan=plan, kind=kind, actor=Actor.person(request))
    messages.success(request, "Draft written from the plan. Check it, then download it.")
    return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)


@permission_required("onboarding.view_correspondence")
def letter_detail(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    return _render_letter(request, plan, get_letter(plan, letter_pk))


@permission_required("onboarding.change_correspondence")
@require_POST
def letter_edit(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    letter = get_letter(plan, letter_pk)
    if letter.status != Correspondence.Status.DRAFT:
        messages.error(request, "A sent email cannot be edited: it is the record of what was sent.")
        return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)
    form = CorrespondenceForm(request.POST, instance=letter, user=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, "Draft saved.")
        return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)
    return _render_letter(request, plan, letter, form=form, status=400)


@permission_required("onboarding.change_correspondence")
@require_POST
def letter_regenerate(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    letter = get_letter(plan, letter_pk)
    try:
        letters.correspondence_regenerate(correspondence=letter, user=request.user)
    except OnboardingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Draft written again from the plan's current data.")
    return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)


@permission_required("onboarding.view_correspondence")
@same_site_only
def letter_download(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    letter = get_letter(plan, letter_pk)
    user = request.user
    sender = (
        formataddr((user.get_full_name() or user.get_username(), user.email)) if user.email else ""
    )
    try:
        data = letters.correspondence_eml(letter, sender=sender)
    except OnboardingError as exc:
        messages.error(request, str(exc))
        return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)
    record(actor=Actor.person(request), action="onboarding.correspondence_downloaded", obj=letter)
    response = HttpResponse(data, content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="{letters.eml_filename(letter)}"'
    return response


@permission_required("onboarding.change_correspondence")
@require_POST
def letter_sent(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    letter = get_letter(plan, letter_pk)
    form = SentForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            letters.correspondence_mark_sent(
                correspondence=letter,
                sent_on=form.cleaned_data["sent_on"],
                ticket_reference=form.cleaned_data["ticket_reference"],
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Marked as sent: the wait is counted in working days.")
            return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)
    return _render_letter(request, plan, letter, sent_form=form, status=400)


@permission_required("onboarding.change_correspondence")
@require_POST
def letter_reply(request, pk: int, letter_pk: int):
    plan = get_plan(request, pk)
    letter = get_letter(plan, letter_pk)
    form = ReplyForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            letters.correspondence_record_reply(
                correspondence=letter,
                reply_text=data["reply_text"],
                replied_on=data["replied_on"],
                ticket_reference=data["ticket_reference"],
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Reply recorded.")
            return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)
    return _render_letter(request, plan, letter, reply_form=form, status=400)
