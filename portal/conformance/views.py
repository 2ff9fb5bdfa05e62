from __future__ import annotations

import hashlib

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from portal.audit.services import Actor, record
from portal.lib.crosssite import same_site_only
from portal.lib.http import permission_required
from portal.onboarding.models import Task

from .evidence import evidence_zip, report_context, zip_filename
from .forms import RunForm
from .models import ConformanceRun
from .scenarios import SCENARIOS
from .services import RunRefused, run_create

PAGE_SIZE = 50


def _get_run(request, pk: int) -> ConformanceRun:
    """A run of a mailbox within the person's reach, else 404."""
    related = (
        "mailbox__organisation",
        "peer__organisation",
        "task__plan",
        "started_by",
        "evidence",
    )
    runs = ConformanceRun.objects.within_reach(request.user).select_related(*related)
    return get_object_or_404(runs, pk=pk)


@permission_required("conformance.view_conformancerun")
def run_list(request):
    runs = ConformanceRun.objects.within_reach(request.user).for_list()
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "conformance/list.html", {"page": page, "scenarios": SCENARIOS})


def _initial(request) -> dict:
    """?mailbox=, ?peer= and ?task= prefill the form (an onboarding task links here with its id)."""
    params = request.GET
    initial = {key: params[key] for key in ("mailbox", "peer") if params.get(key)}
    task = (
        Task.objects.within_reach(request.user)
        .select_related("plan__integration_mailbox")
        .filter(pk=params.get("task") if str(params.get("task", "")).isdigit() else None)
        .first()
    )
    if task is not None:
        initial["task"] = task.pk
        if task.plan.integration_mailbox and "mailbox" not in initial:
            initial["mailbox"] = task.plan.integration_mailbox.mailbox_id
    return initial


@permission_required("conformance.add_conformancerun")
def run_new(request):
    data = request.POST if request.method == "POST" else None  # an empty POST is a submission
    form = RunForm(data, user=request.user, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = run_create(
                mailbox=data["mailbox"],
                peer=data["peer"],
                scenario_keys=data["scenarios"],
                workflow_id=data["workflow_id"],
                reply_workflow_id=data["reply_workflow_id"],
                task=data.get("task"),
                allow_live=data.get("allow_live", False),
                actor=Actor.person(request),
            )
        except RunRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Run {run.pk} queued: a worker runs the scenarios now.")
            return redirect("conformance:detail", pk=run.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "conformance/new.html", {"form": form}, status=status)


@permission_required("conformance.view_conformancerun")
def run_detail(request, pk: int):
    run = _get_run(request, pk)
    results = list(run.results.all())
    done = sum(1 for result in results if result.finished_at)
    context = {"run": run, "results": results, "done": done, "counts": run.counts()}
    return render(request, "conformance/detail.html", context)


@permission_required("conformance.view_conformancerun")
def run_report(request, pk: int):
    """The printable report: the same content as report.html in the evidence pack."""
    return render(request, "conformance/report.html", report_context(_get_run(request, pk)))


@permission_required("conformance.view_conformancerun")
@same_site_only
def run_evidence(request, pk: int):
    """The evidence pack as a zip (report.html and run.json); every download is audited."""
    run = _get_run(request, pk)
    if not run.is_finished:
        raise Http404("The evidence pack is ready once the run has finished.")
    data = evidence_zip(run)
    filename = zip_filename(run)
    record(
        actor=Actor.person(request),
        action="conformance.evidence_downloaded",
        obj=run,
        detail=f"{filename}, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}",
    )
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
