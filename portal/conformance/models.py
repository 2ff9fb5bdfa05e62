"""Conformance runs: the witnessed-test scenarios run against a mailbox and a peer, kept as evidence."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.accounts import reach
from portal.mailboxes.models import Environment


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    # The run could not start or stopped before its scenarios finished (mailbox busy, worker error).
    ERROR = "error", "Could not run"


class Outcome(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    NOT_APPLICABLE = "not_applicable", "Not applicable here"
    NOT_RUN = "not_run", "Not run"


FINISHED_RUN = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR)
UNFINISHED_RESULT = (Outcome.PENDING, Outcome.RUNNING)
# A running run whose worker has shown no sign of life for this long has stopped (killed, Q_TIMEOUT).
DEFAULT_STALE_SECONDS = 120
# A queued run no worker has started for this long is queued again once, then given up.
DEFAULT_QUEUED_SECONDS = 600


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "CONFORMANCE_STALE_SECONDS", DEFAULT_STALE_SECONDS))


def queued_after() -> timedelta:
    seconds = getattr(settings, "CONFORMANCE_QUEUED_SECONDS", DEFAULT_QUEUED_SECONDS)
    return timedelta(seconds=seconds)


class Origin(models.TextChoices):
    WEB = "web", "Web page"
    COMMAND = "command", "Command line"


class ConformanceRunQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)

    def for_list(self):
        return self.select_related("mailbox", "peer", "started_by").order_by("-created_at", "-pk")

    def stalled(self, now=None):
        """Running runs whose worker went quiet, and queued runs no worker has started."""
        now = now or timezone.now()
        return self.filter(
            Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - stale_after())
            | Q(status=RunStatus.QUEUED, heartbeat_at__lt=now - queued_after())
        )


class ConformanceRun(models.Model):
    audit_mailbox = "mailbox_id"  # the audit trail reads a record's reach by it

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.PROTECT, related_name="conformance_runs"
    )
    peer = models.ForeignKey("mailboxes.Mailbox", on_delete=models.PROTECT, related_name="+")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    base_url = models.CharField("Base URL", max_length=200)
    workflow_id = models.CharField("Workflow (mailbox to peer)", max_length=300)
    reply_workflow_id = models.CharField("Workflow (peer to mailbox)", max_length=300)
    scenario_keys = models.JSONField(default=list)
    allow_live = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    summary = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    cleanup = models.CharField(max_length=300, blank=True)
    client_version = models.CharField(max_length=100, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_label = models.CharField(max_length=200, blank=True)
    task = models.ForeignKey(
        "onboarding.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conformance_runs",
    )
    evidence = models.ForeignKey(
        "onboarding.Evidence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.CharField(max_length=200, blank=True)
    # The last sign of life: when the run was queued (or queued again), then the worker's heartbeat.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requeued = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConformanceRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("run_on_live", "Can run the conformance self-test on a live mailbox")]
        indexes = [
            # The run list, newest first.
            models.Index(fields=["-created_at", "-id"], name="conformance_run_recent"),
            # The sweep of stalled runs (tasks.sweep_runs).
            models.Index(fields=["status", "heartbeat_at"], name="conformance_run_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk}: {self.mailbox.mailbox_id} with {self.peer.mailbox_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN

    @property
    def is_stalled(self) -> bool:
        """Unfinished and silent for too long: the worker stopped, or none has started it."""
        if self.heartbeat_at is None or self.is_finished:
            return False
        limit = stale_after() if self.status == RunStatus.RUNNING else queued_after()
        return self.heartbeat_at < timezone.now() - limit

    @property
    def is_sandbox(self) -> bool:
        return self.environment == Environment.SANDBOX

    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in Outcome}
        for outcome in self.results.values_list("outcome", flat=True):
            counts[outcome] += 1
        return counts


class ScenarioResult(models.Model):
    run = models.ForeignKey(ConformanceRun, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=40)
    ref = models.CharField("Witness case", max_length=20, blank=True)
    title = models.CharField(max_length=200)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    message_ids = models.JSONField(default=list)
    # [{label, size, sha256}]: payloads are never stored, only their size and hash.
    payloads = models.JSONField(default=list)
    measurements = models.JSONField(default=dict)
    notes = models.JSONField(default=list)
    # [{mailbox, method, path, query, status, error, request_headers, response_headers, elapsed_ms}]
    # with Authorization redacted by meshcore; long runs keep a sample (see recorder.py).
    exchanges = models.JSONField(default=list)
    exchanges_total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="conformance_result_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.title}: {self.get_outcome_display()}"

    @property
    def exchanges_omitted(self) -> int:
        return max(0, self.exchanges_total - len(self.exchanges))
