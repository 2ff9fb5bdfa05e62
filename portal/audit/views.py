"""Auditors' pages: the audit trail, one record, and the trail's CSV export.

Read-only by construction: every view here is a GET, and AuditRecord refuses updates and deletes.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from portal.lib.crosssite import same_site_only
from portal.lib.http import permission_required
from portal.lib.pagination import count_up_to

from . import exports
from .actors import Actor
from .enqueue import enqueue_verification
from .forms import KNOWN_ACTIONS, AuditFilterForm
from .models import AuditRecord, Verification
from .services import mask_changes, record

PAGE_SIZE = 50
CURSOR_PARAMS = ("after", "before")
# Where a record's object can be seen: object type -> URL name taking its id.
OBJECT_PAGES = {
    "messaging.message": "messaging:detail",
    "mailboxes.mailbox": "mailboxes:detail",
    "certificates.certificate": "certificates:detail",
    "onboarding.plan": "onboarding:detail",
}


def _querystring(request, *drop: str) -> str:
    query = request.GET.copy()
    for name in drop:
        query.pop(name, None)
    return query.urlencode()


@require_GET
@permission_required("audit.view_auditrecord")
def trail(request):
    filters = AuditFilterForm(request.GET or None, user=request.user)
    records = AuditRecord.objects.within(request.reach)
    page = filters.page(
        records,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        size=PAGE_SIZE,
    )
    context = {
        "filters": filters,
        "page": page,
        # Counted in the trail's order: every index it reads ends in seq, so the count stops
        # after the limit. Unordered, PostgreSQL intersected a date range's seq and time indexes
        # (900,000 entries for a 2-day range at 20M records) to count to 1,001.
        "count": count_up_to(filters.filter(records), ordered=True),
        "querystring_base": _querystring(request, *CURSOR_PARAMS),
        "known_actions": KNOWN_ACTIONS,
        **verification_state(),
    }
    return render(request, "audit/trail.html", context)


def verification_state() -> dict:
    """The last verification, and whether one asked for since is still waiting for a worker."""
    last = Verification.objects.order_by("-at").first()
    asked = AuditRecord.objects.filter(action="audit.verification_requested")
    if last is not None:
        asked = asked.filter(at__gt=last.at)
    return {"verification": last, "verification_pending": asked.exists()}


@require_POST
@permission_required("audit.run_verification")
def verify_now(request):
    """Run the chain verification now: a worker walks the chain; the audit pages show its result."""
    task_id = enqueue_verification()
    record(
        actor=Actor.person(request), action="audit.verification_requested", detail=f"task {task_id}"
    )
    messages.info(
        request,
        "Verification started: a worker checks the whole chain; its result shows here when it "
        "finishes (reload the page).",
    )
    return redirect("audit:trail")


def object_url(entry: AuditRecord) -> str | None:
    name = OBJECT_PAGES.get(entry.object_type)
    if not name or not entry.object_id.isdigit():
        return None
    try:
        return reverse(name, args=[int(entry.object_id)])
    except NoReverseMatch:
        return None


def change_rows(changes: dict) -> list[dict]:
    """Before and after per field (secrets masked again, whatever wrote the record)."""
    rows = []
    for field, value in sorted(mask_changes(changes or {}).items()):
        if isinstance(value, list | tuple) and len(value) == 2:
            rows.append({"field": field, "before": value[0], "after": value[1]})
        else:
            rows.append({"field": field, "before": None, "after": value, "other": True})
    return rows


@require_GET
@permission_required("audit.view_auditrecord")
def record_detail(request, seq: int):
    records = AuditRecord.objects.within(request.reach)
    entry = get_object_or_404(records.select_related("actor"), seq=seq)
    context = {
        "entry": entry,
        "changes": change_rows(entry.changes),
        "object_url": object_url(entry),
        "newer": records.filter(seq=entry.seq + 1).exists(),
        **verification_state(),
    }
    return render(request, "audit/detail.html", context)


def _refuse_invalid(request, back: str):
    messages.error(request, "Correct the filters before exporting.")
    return redirect(f"{reverse(back)}?{request.GET.urlencode()}")


@require_GET
@permission_required("audit.view_auditrecord", "audit.export_auditrecord")
@same_site_only
def trail_export(request):
    filters = AuditFilterForm(request.GET or None, user=request.user)
    if filters.is_bound and not filters.is_valid():
        return _refuse_invalid(request, "audit:trail")
    return exports.audit_trail_csv(request, filters)
