from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import Actor
from portal.conformance.evidence import evidence_zip
from portal.conformance.models import Origin, RunStatus, ScenarioResult
from portal.conformance.scenarios import SCENARIOS
from portal.conformance.services import RunRefused, run_create, run_execute
from portal.mailboxes.management.commands._common import get_mailbox
from portal.onboarding.models import Task

MARKS = {"passed": "PASS", "failed": "FAIL", "not_applicable": "N/A ", "not_run": "SKIP"}


class Command(BaseCommand):
    help = (
        "Run the MESH conformance self-test (the witnessed-test scenarios) between MAILBOX and a "
        "peer, now, in this process. Prints a line per scenario; exits non-zero if any fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("mailbox", nargs="?", help="MESH mailbox id under test")
        parser.add_argument("--peer", help="MESH mailbox id of the peer (same environment)")
        parser.add_argument(
            "--scenario",
            action="append",
            dest="scenarios",
            metavar="KEY",
            help="Run only this scenario (repeatable; default all). --list shows the keys.",
        )
        parser.add_argument("--workflow", default="", help="Workflow from the mailbox to the peer")
        parser.add_argument("--reply-workflow", default="", help="Workflow from the peer back")
        parser.add_argument(
            "--task", type=int, help="Onboarding task id: attach the evidence pack to it"
        )
        parser.add_argument(
            "--allow-live",
            action="store_true",
            help="Allow a LIVE mailbox (only with NHS England's agreement)",
        )
        parser.add_argument("--evidence", metavar="PATH", help="Also write the evidence zip here")
        parser.add_argument("--list", action="store_true", help="List the scenarios and exit")

    def handle(self, *args, **options):
        if options["list"]:
            for scenario in SCENARIOS.values():
                self.stdout.write(f"{scenario.key:<22} {scenario.ref:<8} {scenario.title}")
            return
        if not options["mailbox"] or not options["peer"]:
            raise CommandError("Name the mailbox under test and --peer (or use --list).")
        run = self._create(options)
        self.stdout.write(
            f"Run {run.pk}: {run.mailbox.mailbox_id} with {run.peer.mailbox_id} "
            f"({run.get_environment_display()}, {run.base_url}), {len(run.scenario_keys)} scenario(s)"
        )
        run = run_execute(run_id=run.pk, on_result=self._line)
        if run.cleanup:
            self.stdout.write(run.cleanup)
        if options["evidence"]:
            Path(options["evidence"]).write_bytes(evidence_zip(run))
            self.stdout.write(f"Evidence pack written to {options['evidence']}")
        if run.evidence_id:
            self.stdout.write(f"Evidence pack attached to onboarding task {run.task.ref}.")
        if run.status != RunStatus.PASSED:
            raise CommandError(
                f"Run {run.pk}: {run.get_status_display()}. {run.error or run.summary}"
            )
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} passed: {run.summary}"))

    def _create(self, options):
        task = None
        if options["task"]:
            task = Task.objects.select_related("plan").filter(pk=options["task"]).first()
            if task is None:
                raise CommandError(f"No onboarding task {options['task']}.")
        try:
            return run_create(
                mailbox=get_mailbox(options["mailbox"]),
                peer=get_mailbox(options["peer"]),
                scenario_keys=options["scenarios"],
                workflow_id=options["workflow"],
                reply_workflow_id=options["reply_workflow"],
                task=task,
                allow_live=options["allow_live"],
                origin=Origin.COMMAND,
                enqueue=False,
                actor=Actor.command(),
            )
        except RunRefused as exc:
            raise CommandError(str(exc)) from None

    def _line(self, result: ScenarioResult) -> None:
        mark = MARKS.get(result.outcome, result.outcome)
        seconds = (result.duration_ms or 0) / 1000
        line = f"{mark}  {result.ref or '-':<8} {result.key:<22} {seconds:7.2f} s  {result.reason}"
        style = self.style.ERROR if result.outcome == "failed" else (lambda text: text)
        self.stdout.write(style(line))
