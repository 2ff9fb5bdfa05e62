"""Starting a conformance run, running its scenarios (in a worker or a command), finishing it."""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

import meshcore
from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.lib.workers import worker_name
from portal.mailboxes.models import Environment, Mailbox, Workflow
from portal.mailboxes.services import MailboxNotReady, mesh_client
from portal.onboarding.gate import transfer_blocked_reason
from portal.onboarding.models import CLOSED_STATUSES, EvidenceKind, Task

from .enqueue import enqueue_run
from .locks import Lease, MailboxBusy, mailboxes_claimed, run_kept_alive, unclaimed
from .models import (
    UNFINISHED_RESULT,
    ConformanceRun,
    Origin,
    Outcome,
    RunStatus,
    ScenarioResult,
    queued_after,
    stale_after,
)
from .recorder import Recorder
from .scenarios import SCENARIOS, Context, NotApplicable, RunStopped, ScenarioFailed, Step
from .scenarios.base import started

log = logging.getLogger(__name__)

DEFAULT_HIGH_VOLUME_COUNT = 600
SANDBOX_CHUNK_SIZE = 64 * 1024
RunListener = Callable[[ScenarioResult], None]


class RunRefused(Exception):
    """The run cannot start; the message says why in plain English."""


def rehearsal_tasks() -> QuerySet[Task]:
    """The onboarding tasks a run may attach its pack to: open witness-test rehearsal tasks."""
    return Task.objects.filter(evidence_kind=EvidenceKind.WITNESS_TEST).exclude(
        status__in=CLOSED_STATUSES
    )


def task_refusal(task: Task) -> str | None:
    """Why a run's evidence pack cannot go onto this onboarding task, or None (the form's rule)."""
    name = f"Onboarding task {task.ref} ({task.title})"
    if task.evidence_kind != EvidenceKind.WITNESS_TEST:
        return f"{name} does not take witnessed test records: choose the task that rehearses it."
    if task.status in CLOSED_STATUSES:
        return f"{name} is {task.get_status_display().lower()}: a closed task takes no evidence."
    return None


def run_refusal(*, mailbox: Mailbox, peer: Mailbox, allow_live: bool = False) -> str | None:
    """Why these two mailboxes cannot be used for a run, or None."""
    if mailbox.pk == peer.pk:
        return "Choose a different peer: the scenarios send between two mailboxes."
    if mailbox.environment != peer.environment:
        return (
            f"{mailbox.mailbox_id} is in {mailbox.get_environment_display()} but {peer.mailbox_id} "
            f"in {peer.get_environment_display()}: both must be in the same environment."
        )
    if Environment.LIVE in (mailbox.environment, peer.environment) and not allow_live:
        return (
            f"{mailbox.mailbox_id} is a LIVE mailbox: a run sends hundreds of test messages. It "
            "runs on live only when explicitly allowed, and only with NHS England's agreement."
        )
    for box in (mailbox, peer):
        if not box.password or not box.shared_key:
            return f"{box.mailbox_id} has no password or shared key set."
        blocked = transfer_blocked_reason(box)
        if blocked:
            return blocked[0].upper() + blocked[1:] + "."
    return None


def _workflows(mailbox: Mailbox, direction: str) -> set[str]:
    return set(mailbox.workflows.filter(direction=direction).values_list("workflow_id", flat=True))


def default_workflows(mailbox: Mailbox, peer: Mailbox) -> tuple[str, str]:
    """(mailbox to peer, peer to mailbox): workflows registered for those directions if any."""
    send, receive = Workflow.Direction.SEND, Workflow.Direction.RECEIVE
    forward = _workflows(mailbox, send) & _workflows(peer, receive) or _workflows(peer, receive)
    workflow = min(forward) if forward else "TEST_WORKFLOW"
    back = _workflows(peer, send) & _workflows(mailbox, receive)
    return workflow, (workflow if workflow in back or not back else min(back))


@transaction.atomic
def run_create(
    *,
    mailbox: Mailbox,
    peer: Mailbox,
    scenario_keys: list[str] | None = None,
    workflow_id: str = "",
    reply_workflow_id: str = "",
    task=None,
    allow_live: bool = False,
    actor: Actor = SYSTEM,
    origin: str = Origin.WEB,
    enqueue: bool = True,
) -> ConformanceRun:
    """A queued run with one pending result per scenario; enqueued for a worker on commit."""
    user = actor.user
    refusal = run_refusal(mailbox=mailbox, peer=peer, allow_live=allow_live) or (
        task_refusal(task) if task is not None else None
    )
    if refusal:
        raise RunRefused(refusal)
    keys = [key for key in SCENARIOS if key in (scenario_keys or SCENARIOS)]
    unknown = sorted(set(scenario_keys or []) - set(SCENARIOS))
    if unknown or not keys:
        raise RunRefused(f"Unknown scenario(s): {', '.join(unknown) or 'none chosen'}.")
    forward, back = default_workflows(mailbox, peer)
    run = ConformanceRun.objects.create(
        mailbox=mailbox,
        peer=peer,
        environment=mailbox.environment,
        base_url=mailbox.effective_base_url(),
        workflow_id=workflow_id or forward,
        reply_workflow_id=reply_workflow_id or back,
        scenario_keys=keys,
        allow_live=allow_live,
        client_version=f"meshcore {meshcore.__version__}; {settings.MESH_APPLICATION_NAME}",
        origin=origin,
        started_by=user,
        task=task,
        heartbeat_at=timezone.now(),
    )
    ScenarioResult.objects.bulk_create(
        ScenarioResult(
            run=run, position=n, key=key, ref=SCENARIOS[key].ref, title=SCENARIOS[key].title
        )
        for n, key in enumerate(keys, start=1)
    )
    detail = (
        f"{mailbox.mailbox_id} with peer {peer.mailbox_id} ({mailbox.get_environment_display()}), "
        f"{len(keys)} scenario(s)" + (f", for onboarding task {task.ref}" if task else "")
    )
    entry = record(action="conformance.run_started", actor=actor, obj=run, detail=detail)
    run.started_by_label = entry.actor_label
    run.save(update_fields=["started_by_label"])
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return run


def run_execute(*, run_id: int, on_result: RunListener | None = None) -> ConformanceRun:
    """Run a queued run's scenarios, once: a second call (or worker) finds it claimed."""
    owner = f"conformance run {run_id} {worker_name()}"[:100]
    now = timezone.now()
    claimed = ConformanceRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=owner
    )
    run = ConformanceRun.objects.select_related(
        "mailbox__organisation", "peer__organisation", "task__plan", "started_by"
    ).get(pk=run_id)
    if not claimed:
        return run
    try:
        with run_kept_alive(run.pk, owner) as alive:
            refusal = run_refusal(mailbox=run.mailbox, peer=run.peer, allow_live=run.allow_live)
            if refusal:
                raise RunRefused(refusal)
            with mailboxes_claimed([run.mailbox, run.peer], owner) as claims:
                _run_scenarios(run, on_result, _checkpoint(run, owner, alive, claims))
    except (RunRefused, RunStopped, MailboxBusy, MailboxNotReady, meshcore.MeshError) as exc:
        run.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the run must end with a status whatever happens
        log.exception("Conformance run %s stopped", run_id)
        run.error = f"The run stopped with an unexpected error: {type(exc).__name__}: {exc}"
    finally:
        _finish(run)
    return run


def _checkpoint(run: ConformanceRun, owner: str, alive: Lease, claims: Lease) -> Callable[[], None]:
    """What the run calls between scenarios and inside long ones: stop if a claim was lost."""
    boxes = [run.mailbox, run.peer]

    def check() -> None:
        if alive.lost:
            raise RunStopped(
                "The run stopped: its heartbeat could not be kept up, so it was no longer counted "
                "as running (the sweep may already have ended it). Start it again."
            )
        if claims.lost:
            names = " and ".join(unclaimed(boxes, owner) or [box.mailbox_id for box in boxes])
            raise RunStopped(
                f"The run stopped: it lost its hold on {names} (the poll claim was not renewed "
                f"within its lease of {claims.seconds:.0f} s), so the portal's poller could collect "
                "this run's messages. Start it again."
            )

    return check


def _settings_for(run: ConformanceRun) -> dict:
    sandbox = run.is_sandbox
    return {
        "high_volume_count": getattr(
            settings, "CONFORMANCE_HIGH_VOLUME_COUNT", DEFAULT_HIGH_VOLUME_COUNT
        ),
        "chunk_size": getattr(settings, "CONFORMANCE_CHUNK_SIZE", None)
        or (SANDBOX_CHUNK_SIZE if sandbox else meshcore.MIN_LIVE_CHUNK_SIZE),
        # Real MESH lists a message a moment after it is accepted; the sandbox at once.
        "delivery_timeout": 15.0 if sandbox else 300.0,
        "poll_every": 0.2 if sandbox else 10.0,
    }


def _client_factory(recorder: Recorder) -> Callable[..., contextlib.AbstractContextManager]:
    @contextlib.contextmanager
    def make_client(mailbox: Mailbox, *, password: str | None = None) -> Iterator:
        """A client for the mailbox, optionally with another password (never saved)."""
        if password is not None:
            mailbox = copy.copy(mailbox)
            mailbox.password = password
        with mesh_client(mailbox, on_exchange=recorder.callback(mailbox.mailbox_id)) as client:
            yield client

    return make_client


def _run_scenarios(
    run: ConformanceRun, on_result: RunListener | None, checkpoint: Callable[[], None]
) -> None:
    recorder = Recorder()
    make_client = _client_factory(recorder)
    with make_client(run.mailbox) as client, make_client(run.peer) as peer_client:
        ctx = Context(
            run=run,
            mailbox=run.mailbox,
            peer=run.peer,
            client=client,
            peer_client=peer_client,
            recorder=recorder,
            make_client=make_client,
            checkpoint=checkpoint,
            **_settings_for(run),
        )
        try:
            for result in run.results.filter(outcome=Outcome.PENDING).order_by("position"):
                checkpoint()
                _run_one(ctx, result)
                if on_result is not None:
                    on_result(result)
        finally:
            recorder.paused = True
            run.cleanup = ctx.cleanup()


def _run_one(ctx: Context, result: ScenarioResult) -> None:
    scenario = SCENARIOS[result.key]
    started(result)
    step = Step(result, ctx.recorder)
    began = time.monotonic()
    try:
        reason, outcome = scenario.run(ctx, step), Outcome.PASSED
    except RunStopped as exc:
        # The run cannot go on: keep what this scenario recorded, and stop the run.
        _save_result(ctx, result, began, Outcome.NOT_RUN, f"Stopped part-way: {exc}")
        raise
    except NotApplicable as exc:
        reason, outcome = str(exc), Outcome.NOT_APPLICABLE
    except ScenarioFailed as exc:
        reason, outcome = str(exc), Outcome.FAILED
    except meshcore.MeshError as exc:
        reason, outcome = f"MESH answered unexpectedly: {type(exc).__name__}: {exc}", Outcome.FAILED
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the others
        log.exception("Conformance scenario %s failed", result.key)
        reason, outcome = f"Unexpected error: {type(exc).__name__}: {exc}", Outcome.FAILED
    _save_result(ctx, result, began, outcome, reason)


def _save_result(
    ctx: Context, result: ScenarioResult, began: float, outcome: str, reason: str
) -> None:
    result.exchanges, result.exchanges_total = ctx.recorder.take()
    result.outcome, result.reason = outcome, reason
    result.finished_at = timezone.now()
    result.duration_ms = int((time.monotonic() - began) * 1000)
    result.save()


def summarise(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[outcome]} {label.lower()}"
        for outcome, label in (
            (Outcome.PASSED, "passed"),
            (Outcome.FAILED, "failed"),
            (Outcome.NOT_APPLICABLE, "not applicable"),
            (Outcome.NOT_RUN, "not run"),
        )
        if counts.get(outcome)
    ]
    return ", ".join(parts) or "no scenarios"


def _finish(run: ConformanceRun) -> None:
    """End the worker's run with its outcome, unless the sweep has already ended it."""
    if not run.error and run.results.filter(outcome__in=UNFINISHED_RESULT).exists():
        # Only an exit that is not an error (a SystemExit, say) gets here with scenarios left.
        run.error = "The run stopped before all its scenarios had run."
    actor = Actor.command() if run.origin == Origin.COMMAND else Actor.worker()
    _close(
        run,
        from_status=RunStatus.RUNNING,
        action="conformance.run_finished",
        actor=actor,
        not_run="Not run: the run stopped before this scenario.",
    )


def _close(
    run: ConformanceRun,
    *,
    from_status: str,
    action: str,
    actor: Actor,
    not_run: str,
    **still: object,
) -> bool:
    """Record the run's outcome if it is still `from_status` (and `still` matches): audit, attach.

    A conditional update, so the worker and the sweep never both end a run: whichever comes second
    finds it already ended and changes nothing.
    """
    counts = run.counts()
    if run.error:
        counts[Outcome.NOT_RUN] += counts[Outcome.PENDING] + counts[Outcome.RUNNING]
        counts[Outcome.PENDING] = counts[Outcome.RUNNING] = 0
        run.status = RunStatus.ERROR
    elif counts[Outcome.FAILED] or counts[Outcome.NOT_RUN]:
        run.status = RunStatus.FAILED
    else:
        run.status = RunStatus.PASSED
    run.summary = summarise(counts)[:300]
    run.finished_at = run.updated_at = timezone.now()
    fields = ("status", "summary", "error", "cleanup", "finished_at", "updated_at")
    ended = ConformanceRun.objects.filter(pk=run.pk, status=from_status, **still).update(
        **{name: getattr(run, name) for name in fields}
    )
    if not ended:
        log.info("Conformance run %s was already ended elsewhere", run.pk)
        run.refresh_from_db()
        return False
    run.results.filter(outcome__in=UNFINISHED_RESULT).update(
        outcome=Outcome.NOT_RUN, reason=not_run
    )
    detail = f"{run.get_status_display()}: {run.summary}; started by {run.started_by_label}"
    if run.error:
        detail += f"; {run.error}"
    record(actor=actor, action=action, obj=run, detail=detail[:2000])
    if run.task_id:
        from .evidence import attach_to_task

        try:
            attach_to_task(run)
        except Exception:  # noqa: BLE001 - the run's own record is complete without it
            log.exception("Could not attach run %s's evidence to its onboarding task", run.pk)
    return True


def runs_sweep(*, now=None) -> dict[str, int]:
    """End running runs whose worker went quiet; queue again (once) or end runs nobody started.

    A worker that is killed, hits Q_TIMEOUT or loses its task to the broker leaves its run `running`
    or `queued` for ever; this is the only thing that ends it. Safe to run twice: every change is a
    conditional update on the status and heartbeat the sweep read.
    """
    now = now or timezone.now()
    done = {"abandoned": 0, "requeued": 0, "never_started": 0}
    for run in ConformanceRun.objects.stalled(now).select_related("task__plan", "started_by"):
        if run.status == RunStatus.RUNNING:
            done["abandoned"] += _abandon(run)
        elif run.requeued < 1 and run.origin == Origin.WEB:
            done["requeued"] += _requeue(run, now)
        else:
            done["never_started"] += _give_up(run)
    return done


def _since(run: ConformanceRun) -> str:
    return timezone.localtime(run.heartbeat_at).strftime("%d %b %Y %H:%M:%S")


def _abandon(run: ConformanceRun) -> bool:
    seen, minutes = run.heartbeat_at, stale_after().total_seconds() / 60
    run.error = (
        f"The worker stopped: no sign of life from it since {_since(run)} (more than "
        f"{minutes:g} minute(s)); it was stopped, timed out (Q_TIMEOUT) or lost its task. "
        "Start the run again."
    )
    return _close(
        run,
        from_status=RunStatus.RUNNING,
        action="conformance.run_abandoned",
        actor=Actor.worker(),
        not_run="Not run: the worker stopped before this scenario finished.",
        heartbeat_at=seen,
    )


def _requeue(run: ConformanceRun, now) -> bool:
    queued = ConformanceRun.objects.filter(
        pk=run.pk, status=RunStatus.QUEUED, heartbeat_at=run.heartbeat_at
    ).update(heartbeat_at=now, requeued=run.requeued + 1, updated_at=now)
    if queued:
        record(
            actor=Actor.worker(),
            action="conformance.run_requeued",
            obj=run,
            detail=f"No worker had started it since {_since(run)}: queued again.",
        )
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return bool(queued)


def _give_up(run: ConformanceRun) -> bool:
    minutes = queued_after().total_seconds() / 60
    if run.origin == Origin.COMMAND:
        why = "the command that created it stopped before starting it"
    else:
        why = (
            "the background workers (manage.py qcluster) may be stopped or busy, or the broker "
            "lost its task"
        )
    run.error = (
        f"No worker started the run: queued since {_since(run)}, more than {minutes:g} minute(s) "
        f"each time it was queued; {why}. Start it again."
    )
    return _close(
        run,
        from_status=RunStatus.QUEUED,
        action="conformance.run_abandoned",
        actor=Actor.worker(),
        not_run="Not run: no worker started the run.",
        heartbeat_at=run.heartbeat_at,
    )
