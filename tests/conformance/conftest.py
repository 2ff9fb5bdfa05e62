"""Helpers for the conformance tests: a run made and run in this process, as the command does."""

from __future__ import annotations

from portal.conformance.models import Origin
from portal.conformance.services import run_create, run_execute


def execute(mailbox, peer, *keys, **kwargs):
    """Create a run (as the command does) and run it in this process; returns the finished run."""
    kwargs.setdefault("origin", Origin.COMMAND)
    run = run_create(
        mailbox=mailbox, peer=peer, scenario_keys=list(keys) or None, enqueue=False, **kwargs
    )
    return run_execute(run_id=run.pk)
