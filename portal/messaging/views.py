from __future__ import annotations

import contextlib
import math
import re
import time

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

import meshcore
from portal.accounts.factors import step_up_required
from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.lib.bodylimit import body_limit
from portal.lib.crosssite import same_site_only
from portal.lib.http import permission_required
from portal.lib.pagination import (
    BoundedCount,
    KeysetPage,
    count_up_to,
    decode_cursor,
    id_walk_count,
)
from portal.lib.querytime import TooSlow, time_limit
from portal.mailboxes.models import Environment, Mailbox, Workflow
from portal.mailboxes.services import MailboxNotReady, mesh_client

from . import exports, quarantine, search
from .forms import BulkSendForm, FixSendForm, LookupForm, SendForm
from .log import MessageLogFilterForm, related_audit_records
from .mesh_codes import explain
from .models import Direction, InboundFailure, Message, Status
from .retention import payload_retention
from .services import (
    SendRejected,
    TrackRefused,
    message_queue_send,
    message_requeue,
    message_track_now,
)

PAGE_SIZE = 25
CURSOR_PARAMS = ("after", "before")


def _get_message_for_user(request, pk: int) -> Message:
    """A message within the person's reach (portal.accounts.reach), else 404."""
    related = (
        "mailbox",
        "mailbox__organisation",
        "linked_message",
        "created_by",
        "acknowledges",
        "copied_from",
    )
    return get_object_or_404(
        Message.objects.within_reach(request.user).select_related(*related), pk=pk
    )


def _querystring(request, *drop: str) -> str:
    query = request.GET.copy()
    for name in drop:
        query.pop(name, None)
    return query.urlencode()


def _page(request, filters, rows) -> KeysetPage:
    return filters.page(
        rows.prefetch_related("mailbox"),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        size=PAGE_SIZE,
    )


def _count(filters, rows) -> BoundedCount:
    if (walk := filters.word_walk) is not None:  # counted along the word's entries, as paged
        return id_walk_count(walk)
    return count_up_to(filters.filter(rows), ordered=filters.search_walks)


def _listed_page(request, filters, rows, seconds: float | None):
    """The list's page and its count, stopped by the database after `seconds` (None: never)."""
    with time_limit(seconds):
        return _page(request, filters, rows), _count(filters, rows)


def _walked_page(request, filters, rows, seconds: float, count_seconds: float):
    """A word search's page walked within `seconds` (TooSlow past it), then its count, which walks
    on (up to 1,001 matches), within `count_seconds`. A count that runs out says what the pages
    show: all the matches when this first page is the only one, else more than a page of them."""
    with time_limit(seconds):
        page = _page(request, filters, rows)
    try:
        with time_limit(count_seconds):
            return page, _count(filters, rows)
    except TooSlow:
        cursor = decode_cursor(request.GET.get("after")) or decode_cursor(request.GET.get("before"))
        if cursor or page.next_cursor:  # a full page came before this one, or one follows
            return page, BoundedCount(PAGE_SIZE + 1, PAGE_SIZE)
        return page, BoundedCount(len(page.items), len(page.items))


def _searched_page(request, filters, rows, searching: bool):
    """The list's page within SEARCH_TIME_LIMIT_SECONDS for a search (TooSlow past it).

    A search by words common to many messages is checked row by row as the page walks: quick when
    the matches are spread through time, a walk of everything newer when they sit in an old batch.
    Such a walk gets search.WALK_SECONDS for its page (its count then search.WALK_COUNT_SECONDS:
    _walked_page); past that, the matches are collected from the word index (search.matching_ids)
    and paged by id, or, too many to collect, walked for the time left.
    """
    limit = settings.SEARCH_TIME_LIMIT_SECONDS if searching else None
    if not filters.walked_words:
        return _listed_page(request, filters, rows, limit)
    started = time.monotonic()

    def left() -> float | None:
        if not limit:
            return None
        if (seconds := limit - (time.monotonic() - started)) <= 0:
            raise TooSlow(limit)
        return seconds

    walk = min(search.WALK_SECONDS, limit or math.inf)
    count = max(0.01, min(search.WALK_COUNT_SECONDS, (limit or math.inf) - walk))
    try:
        return _walked_page(request, filters, rows, walk, count)
    except TooSlow:
        if limit and limit <= search.WALK_SECONDS:
            raise TooSlow(limit) from None
    with time_limit(left()):
        filters.collect_matches()
    return _listed_page(request, filters, rows, left())


@permission_required("messaging.view_message")
def message_list(request):
    filters = MessageLogFilterForm(request.GET or None, user=request.user)
    # The mailbox is fetched apart (prefetch, not a join): joined, SQLite loops over mailboxes
    # and sorts their messages, instead of walking the created_at index and stopping at a page.
    rows = Message.objects.defer("mesh_status_description", "last_error", "failure_reason")
    searching = bool(request.GET.get("q", "").strip())
    try:
        page, count = _searched_page(request, filters, rows, searching)
        too_slow = None
    except TooSlow as stopped:
        page, count, too_slow = KeysetPage(), None, stopped
    direction = filters.cleaned_data.get("direction", "") if filters.is_bound else ""
    tabs = [("", "All"), (Direction.INBOUND, "Inbound"), (Direction.OUTBOUND, "Outbound")]
    base = _querystring(request, "direction", *CURSOR_PARAMS)
    context = {
        "filters": filters,
        "page": page,
        "count": count,
        "too_slow": too_slow,
        "direction": direction,
        "querystring_base": _querystring(request, *CURSOR_PARAMS),
        "tabs": [
            (
                f"?{base}&direction={value}" if base else f"?direction={value}",
                label,
                value == direction,
            )
            for value, label in tabs
        ],
        "inbound_failures": quarantine.held_inbound(user=request.user),
        "show_mailbox": True,
        "next_url": request.get_full_path(),
    }
    return render(request, "messaging/list.html", context)


@permission_required("messaging.view_message")
def message_detail(request, pk: int):
    message = _get_message_for_user(request, pk)
    failure = message.failure_reason
    if not failure and message.mesh_status_code and message.status == Status.FAILED:
        failure = explain(message.mesh_status_code, message.mesh_status_description)
    context = {
        "message": message,
        "events": [
            (event, *event.timeline_line(message.chunks_total))
            for event in message.events.select_related("actor")
        ],
        "reports": message.reports.all() if message.is_outbound else [],
        "failure": failure,
        "in_flight": message.status in Status.in_flight,
        "can_resend": message.is_outbound and message.status in (Status.FAILED, Status.UNCERTAIN),
        "copies": message.copies.all() if message.is_outbound else [],
        "business_acks": message.business_acks.all() if message.is_outbound else [],
        "business_ack_expected": _business_ack_hours(message),
        "can_track": message.is_outbound
        and message.status == Status.ACCEPTED
        and bool(message.mesh_message_id),
        "audit_records": related_audit_records(request.user, message),
        "retention": payload_retention(message),
    }
    return render(request, "messaging/detail.html", context)


def _business_ack_hours(message: Message) -> int | None:
    if not message.is_outbound or message.is_report:
        return None
    rule = Workflow.objects.filter(
        mailbox_id=message.mailbox_id,
        workflow_id=message.workflow_id,
        direction=Workflow.Direction.SEND,
    ).values_list("business_ack_hours", flat=True)
    return rule.first()


@permission_required("mailboxes.change_mailbox")
@require_POST
def inbound_failure_act(request, pk: int):
    """A person retries a quarantined inbound message, or leaves it in MESH (both audited)."""
    failures = InboundFailure.objects.within_reach(request.user).select_related("mailbox")
    failure = get_object_or_404(failures, pk=pk)
    action = request.POST.get("action")
    if failure.status != InboundFailure.State.QUARANTINED:
        messages.error(request, f"{failure.mesh_message_id} is not quarantined: nothing to do.")
    elif action == "retry":
        quarantine.inbound_failure_retry(failure=failure, actor=Actor.person(request))
        messages.success(
            request, f"{failure.mesh_message_id} will be tried again at the next poll."
        )
    elif action == "leave":
        quarantine.inbound_failure_leave(failure=failure, actor=Actor.person(request))
        messages.success(
            request, f"{failure.mesh_message_id} is left in MESH and will not be received."
        )
    else:
        messages.error(request, "Choose Retry or Leave in MESH.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = ""
    return redirect(target or "mailboxes:detail", **({} if target else {"pk": failure.mailbox_id}))


def safe_download_name(message: Message) -> str:
    """A filename for the browser only: MESH's filename, stripped of paths and odd characters."""
    name = (message.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" ._")[:150]
    return name or f"message-{message.pk}.dat"


@permission_required("messaging.view_message", "messaging.download_payload")
@same_site_only
@step_up_required
def message_download(request, pk: int):
    """The payload as an attachment, from storage by its generated name; every download is audited."""
    message = _get_message_for_user(request, pk)
    if not message.payload:
        raise Http404("This message has no stored payload.")
    try:
        handle = payloads.open_payload(message.payload.name)
    except FileNotFoundError:
        raise Http404("The payload file is missing from storage.") from None
    except payloads.PayloadUnreadable as exc:
        record(
            actor=Actor.person(request),
            action="message.payload_unreadable",
            obj=message,
            detail=str(exc),
        )
        messages.error(request, f"The payload cannot be downloaded: {exc}")
        return redirect("messaging:detail", pk=message.pk)
    filename = safe_download_name(message)
    record(
        actor=Actor.person(request),
        action="message.payload_downloaded",
        obj=message,
        detail=f"{message.size_bytes} bytes as {filename}",
    )
    return FileResponse(
        handle, as_attachment=True, filename=filename, content_type="application/octet-stream"
    )


@permission_required("messaging.view_message", "messaging.send_message")
@require_POST
def message_resend(request, pk: int):
    message = _get_message_for_user(request, pk)
    try:
        message_requeue(message=message, actor=Actor.person(request))
    except SendRejected as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Queued to send again from the start.")
    return redirect("messaging:detail", pk=message.pk)


@permission_required("messaging.view_message", "messaging.send_message")
@require_POST
def message_track(request, pk: int):
    """Refresh now: one look at MESH's tracking, made in the request, at most every 5 minutes."""
    message = _get_message_for_user(request, pk)
    try:
        state = message_track_now(message=message, actor=Actor.person(request))
    except TrackRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"MESH tracking says: {state or 'no status'}.")
    return redirect("messaging:detail", pk=message.pk)


def _send_initial(params) -> dict:
    return {key: params[key] for key in ("mailbox", "recipient") if params.get(key)} | (
        {"workflow_id": params["workflow"]} if params.get("workflow") else {}
    )


def _add_send_error(form: SendForm, error: SendRejected) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, str(error))


@body_limit(lambda: settings.MESH_MAX_UPLOAD_BYTES)
@permission_required("messaging.send_message")
def message_send_view(request):
    form = SendForm(
        request.POST or None,
        request.FILES or None,
        initial=_send_initial(request.GET),
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        message = _queue_from_form(request, form)
        if message is not None:
            return _sent(request, message)
    context = {"form": form, "lookup_mailbox": request.GET.get("mailbox", "")}
    return _render_send(request, form, context)


def _sent(request, message: Message):
    """The message detail; to the send page's upload script, where to go (it shows the progress)."""
    url = reverse("messaging:detail", args=[message.pk])
    if request.headers.get("X-Upload-Progress"):
        return JsonResponse({"location": url})
    return redirect(url)


def _render_send(request, form: SendForm, context: dict):
    """The send form again after an error: the chosen file's name and size (a browser never keeps
    a chosen file across a page load), and the LIVE banner when a live mailbox is chosen."""
    chosen = form["mailbox"].value()
    live = Mailbox.objects.within_reach(request.user).filter(
        mailbox_id=chosen or "", environment=Environment.LIVE
    )
    context |= {"chosen_file": request.FILES.get("file"), "live_chosen": live.exists()}
    return render(request, "messaging/send.html", context)


@body_limit(lambda: settings.MESH_MAX_UPLOAD_BYTES)
@permission_required("messaging.send_message")
def message_send_bulk_view(request):
    """Many files to one recipient and workflow, each its own message. The page's script posts
    the files one at a time (asking for JSON) to show each upload's progress; without the script
    the form posts them all at once and the page lists the outcomes."""
    form = BulkSendForm(
        request.POST or None,
        request.FILES or None,
        initial=_send_initial(request.GET),
        user=request.user,
    )
    results = None
    if request.method == "POST" and form.is_valid():
        results = [_queue_one(request, form, upload) for upload in form.cleaned_data["files"]]
    if request.method == "POST" and request.headers.get("Accept") == "application/json":
        if results is None:
            return JsonResponse({"errors": form.error_summary()}, status=400)
        return JsonResponse({"results": results})
    chosen = form["mailbox"].value()
    live = (
        Mailbox.objects.within_reach(request.user)
        .filter(mailbox_id=chosen or "", environment=Environment.LIVE)
        .exists()
    )
    context = {"form": form, "results": results, "live_chosen": live}
    return render(request, "messaging/send_bulk.html", context)


def _queue_one(request, form: BulkSendForm, upload) -> dict:
    """Queue one file of a bulk send; its outcome for the page (never an exception)."""
    data = form.cleaned_data
    try:
        message = message_queue_send(
            mailbox=data["mailbox"],
            recipient=data["recipient"],
            workflow_id=data["workflow_id"],
            source=upload,
            size=upload.size,
            filename=upload.name,
            subject=data["subject"],
            content_type=upload.content_type or "",
            encrypted=data["encrypted"],
            compressed=data["compressed"],
            actor=Actor.person(request),
        )
    except SendRejected as exc:
        return {"name": upload.name, "ok": False, "text": str(exc)}
    url = reverse("messaging:detail", args=[message.pk])
    return {"name": upload.name, "ok": True, "text": "Queued", "url": url, "id": message.pk}


@body_limit(lambda: settings.MESH_MAX_UPLOAD_BYTES)
@permission_required("messaging.view_message", "messaging.send_message")
def message_fix(request, pk: int):
    """Fix and resend: a failed message's fields in the send form, editable; its file unless
    another is chosen. The new message is a new send; the failed one stays as it was."""
    original = _get_message_for_user(request, pk)
    if not original.can_fix_and_resend():
        messages.error(request, "Only a failed outbound message can be fixed and sent again.")
        return redirect("messaging:detail", pk=original.pk)
    form = FixSendForm(
        request.POST or None,
        request.FILES or None,
        original=original,
        initial=_fix_initial(original),
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        message = _queue_from_form(request, form, copied_from=original)
        if message is not None:
            return _sent(request, message)
    context = {"form": form, "original": original, "lookup_mailbox": original.mailbox.mailbox_id}
    return _render_send(request, form, context)


def _fix_initial(original: Message) -> dict:
    generated = original.local_id.startswith("neomesh-")
    return {
        "mailbox": original.mailbox.mailbox_id,
        "recipient": original.recipient,
        "workflow_id": original.workflow_id,
        "subject": original.subject,
        "local_id": "" if generated else original.local_id,
        "encrypted": original.encrypted,
        "compressed": original.compressed,
    }


@contextlib.contextmanager
def _send_source(upload, original: Message | None):
    """(file, size, filename, content type): the upload, else the failed message's stored file."""
    if upload is not None or original is None:
        yield upload, upload.size, upload.name, upload.content_type or ""
        return
    with payloads.open_payload(original.payload.name) as handle:
        yield handle, original.size_bytes, original.filename, original.content_type


def _queue_from_form(request, form: SendForm, copied_from: Message | None = None):
    data = form.cleaned_data
    try:
        with _send_source(data.get("file"), copied_from) as (source, size, filename, content_type):
            message = message_queue_send(
                mailbox=data["mailbox"],
                recipient=data["recipient"],
                workflow_id=data["workflow_id"],
                source=source,
                size=size,
                filename=filename,
                subject=data["subject"],
                local_id=data["local_id"],
                content_type=content_type,
                encrypted=data["encrypted"],
                compressed=data["compressed"],
                copied_from=copied_from,
                actor=Actor.person(request),
            )
    except SendRejected as exc:
        _add_send_error(form, exc)
        return None
    except (FileNotFoundError, ValueError):
        form.add_error("file", "The failed message's file is no longer stored: choose the file.")
        return None
    messages.success(request, f"Queued for {message.recipient_display()}: a worker sends it now.")
    return message


@permission_required("messaging.send_message")
def recipient_lookup(request):
    """Look a recipient up in MESH by ODS code and workflow: one quick read, made in the request."""
    # Arriving from the send page with only ?mailbox=: a form to fill in, not a failed lookup.
    if set(request.GET) - {"mailbox"}:
        form = LookupForm(request.GET, user=request.user)
    else:
        form = LookupForm(initial={"mailbox": request.GET.get("mailbox")}, user=request.user)
    results = None
    if form.is_bound and form.is_valid():
        results = _lookup(form)
    return render(request, "messaging/lookup.html", {"lookup_form": form, "results": results})


def _lookup(form: LookupForm) -> list | None:
    data = form.cleaned_data
    try:
        with mesh_client(data["mailbox"]) as client:
            return list(client.lookup(data["ods"], data["workflow"]))
    except (meshcore.MeshError, MailboxNotReady) as exc:
        form.add_error(None, f"The MESH lookup did not work: {exc}")
        return None


@require_GET
@permission_required("messaging.view_message", "audit.export_auditrecord")
@same_site_only
def message_export(request):
    """The message log's filtered rows as CSV; invalid filters send you back to the page."""
    filters = MessageLogFilterForm(request.GET or None, user=request.user)
    if filters.is_bound and not filters.is_valid():
        messages.error(request, "Correct the filters before exporting.")
        return redirect(f"{reverse('messaging:list')}?{request.GET.urlencode()}")
    return exports.message_log_csv(request, filters)
