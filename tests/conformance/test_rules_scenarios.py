"""The issue-12 scenarios on their own: one request whenever it fits; business acknowledgements."""

from __future__ import annotations

import pytest

from portal.conformance.models import Outcome, RunStatus

from .conftest import execute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def test_the_single_request_and_business_ack_scenarios_pass_against_the_sandbox(sandbox_mailboxes):
    run = execute(*sandbox_mailboxes, "single_request", "business_ack")
    results = {r.key: r for r in run.results.all()}
    assert run.status == RunStatus.PASSED, {k: r.reason for k, r in results.items()}
    single = results["single_request"]
    assert single.outcome == Outcome.PASSED
    assert "in one request" in single.reason
    assert single.measurements["random_requests"] == ["1:3", "2:3", "3:3"]
    ack = results["business_ack"]
    assert "_ACK carrying the same local id" in ack.reason and len(ack.message_ids) == 2
