"""Worker entry points (django-q2): thin, take ids, call a service. Safe to run twice."""

from __future__ import annotations

from . import services


def run_suite(run_pk: int) -> str:
    run = services.run_execute(run_id=run_pk)
    return f"Conformance run {run.pk}: {run.get_status_display()} ({run.summary or run.error})"


def sweep_runs() -> str:
    """Scheduled every few minutes: end runs whose worker stopped, re-queue runs nobody started."""
    done = services.runs_sweep()
    return ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in done.items())
