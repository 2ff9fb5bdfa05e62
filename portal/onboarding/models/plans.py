"""Plans, their tasks and decision points: copies of a template, owned by the plan from then on."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from portal.accounts import reach
from portal.mailboxes.models import Environment


class TaskStatus(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING_NHS = "waiting_nhs", "Waiting on NHS England"
    DONE = "done", "Done"
    NOT_APPLICABLE = "na", "Not applicable"


CLOSED_STATUSES = (TaskStatus.DONE, TaskStatus.NOT_APPLICABLE)


class TaskCheck(models.TextChoices):
    """Tasks tied to the system: NeoMesh checks the fact before the task may be done."""

    NONE = "", "None"
    TARGET_MAILBOX = "target_mailbox", "The plan names its mailbox in the target environment"
    TARGET_CSR = "target_csr", "A CSR whose CN uses the target mailbox id and the ODS code"
    INTEGRATION_CSR = "integration_csr", "A CSR whose CN uses the integration mailbox id"
    TARGET_CERTIFICATE = "target_certificate", "An active, unexpired certificate with that CN"
    ALLOW_LIST = "allow_list", "At least one address in the IP allow-list register"
    HANDSHAKE = "handshake", "A successful handshake with the target mailbox within 24 hours"


class PlanQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Plans of a mailbox within reach, or of an organisation wholly within reach."""
        return reach.within_reach(self, user, mailbox="target_mailbox", organisation="organisation")

    def with_progress(self):
        """Each plan with `tasks_total` and `tasks_closed` (done or n/a), in one query."""
        return self.annotate(
            tasks_total=Count("tasks"),
            tasks_closed=Count("tasks", filter=Q(tasks__status__in=CLOSED_STATUSES)),
        )


class Plan(models.Model):
    organisation = models.ForeignKey(
        "mailboxes.Organisation", on_delete=models.PROTECT, related_name="onboarding_plans"
    )
    environment = models.CharField(
        "Target environment", max_length=20, choices=Environment.choices, default=Environment.LIVE
    )
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    template_key = models.CharField(max_length=60)
    template_version = models.PositiveSmallIntegerField()
    # [[number, title], ...], copied from the template like the tasks.
    phases = models.JSONField(default=list)
    start_date = models.DateField(default=timezone.localdate)
    target_mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="Mailbox in the target environment",
    )
    integration_mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["organisation__name", "environment"]
        constraints = [
            # The readiness gate finds "the" live plan of an organisation: never two.
            models.UniqueConstraint(
                fields=["organisation", "environment"], name="one_plan_per_organisation_environment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title}: {self.organisation.name} ({self.get_environment_display()})"

    def phase_titles(self) -> dict[int, str]:
        return {int(number): title for number, title in self.phases}


class TaskQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Tasks of plans within reach (Plan.objects.within_reach)."""
        return self.filter(plan__in=Plan.objects.within_reach(user).values("pk"))

    def open(self):
        return self.exclude(status__in=CLOSED_STATUSES)

    def overdue(self, today: date | None = None):
        return self.open().filter(due_date__lt=today or timezone.localdate())

    def for_owner(self, user):
        return self.filter(owner=user).select_related("plan", "plan__organisation")


class Task(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="tasks")
    key = models.SlugField(max_length=60)
    ref = models.CharField("Reference", max_length=10)
    position = models.PositiveSmallIntegerField()
    phase = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=300)
    guidance = models.TextField(blank=True)
    evidence_hint = models.CharField("Evidence", max_length=300, blank=True)
    sent_to = models.CharField("Sent to", max_length=300, blank=True)
    turnaround_days = models.PositiveSmallIntegerField(null=True, blank=True)
    turnaround_published = models.BooleanField(default=False)
    turnaround_note = models.CharField(max_length=300, blank=True)
    required = models.BooleanField(
        "Required before live transfers",
        default=True,
        help_text="The readiness gate keeps the live mailbox closed until every required task is done.",
    )
    branch = models.CharField(max_length=10, blank=True)
    decision = models.ForeignKey(
        "Decision", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    system_check = models.CharField(max_length=30, choices=TaskCheck.choices, blank=True)
    evidence_kind = models.CharField(max_length=30, blank=True)
    review_months = models.PositiveSmallIntegerField(null=True, blank=True)
    correspondence_kind = models.CharField(max_length=30, blank=True)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="onboarding_tasks",
    )
    due_date = models.DateField(null=True, blank=True)
    due_date_manual = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.TODO)
    waiting_since = models.DateField(null=True, blank=True)
    closed_by_decision = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What NeoMesh found when it completed the task itself (its system check passed); blank when a
    # person marked it done.
    checked_evidence = models.CharField(max_length=300, blank=True)
    # When a person reopened a task NeoMesh had completed: only a fact recorded after this completes
    # it again (a new handshake, CSR or allow-list address).
    reopened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "key"], name="task_key_unique_per_plan")
        ]
        indexes = [
            # "My tasks": a person's open tasks by due date.
            models.Index(fields=["owner", "status", "due_date"], name="onboarding_task_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def is_overdue(self, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return not self.is_closed and self.due_date is not None and self.due_date < today

    @property
    def completed_by_check(self) -> bool:
        """Done by NeoMesh itself, because its system check passed."""
        return self.status == TaskStatus.DONE and bool(self.checked_evidence)

    def status_kind(self, today: date | None = None) -> str:
        """The badge style: overdue (red) wins over the status's own style."""
        if self.is_overdue(today):
            return "overdue"
        return {
            TaskStatus.DONE: "ok",
            TaskStatus.NOT_APPLICABLE: "na",
            TaskStatus.WAITING_NHS: "waiting",
            TaskStatus.IN_PROGRESS: "progress",
        }.get(self.status, "todo")


class Decision(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="decisions")
    key = models.SlugField(max_length=60)
    phase = models.PositiveSmallIntegerField()
    question = models.CharField(max_length=300)
    guidance = models.TextField(blank=True)
    # [{"key", "label", "branches": [...], "summary"}], copied from the template.
    options = models.JSONField(default=list)
    answers = models.ForeignKey(
        Task,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The task whose correspondence carries NHS England's reply.",
    )
    chosen = models.CharField(max_length=60, blank=True)
    reply_text = models.TextField("NHS England's reply", blank=True)
    ticket_reference = models.CharField(max_length=100, blank=True)
    reply_evidence = models.ForeignKey(
        "Evidence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "phase", "key"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "key"], name="decision_key_unique_per_plan")
        ]

    def __str__(self) -> str:
        answer = self.chosen_option()
        return f"{self.question}: {answer['label'] if answer else 'not decided'}"

    @property
    def is_recorded(self) -> bool:
        return bool(self.chosen)

    def option(self, key: str) -> dict | None:
        return next((option for option in self.options if option["key"] == key), None)

    def chosen_option(self) -> dict | None:
        return self.option(self.chosen) if self.chosen else None

    def branches(self) -> list[str]:
        """Every branch any option of this decision enables."""
        return sorted({branch for option in self.options for branch in option["branches"]})
