"""Plan templates are data; a plan copies them, so a new template version never rewrites a plan."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from django.urls import reverse

from portal.onboarding import services
from portal.onboarding.errors import OnboardingError
from portal.onboarding.models import CorrespondenceKind, EvidenceKind, Plan, TaskCheck
from portal.onboarding.plans import TEMPLATES, TaskSpec
from portal.onboarding.plans.spec import ITOC, NATIONAL_SERVICE_DESK, template_problems
from portal.onboarding.workdays import add_working_days
from tests.factories import make_organisation

from .helpers import make_plan

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_it_keeps_every_template_consistent(key):
    problems = template_problems(
        TEMPLATES[key],
        checks=set(TaskCheck.values) - {""},
        evidence_kinds=set(EvidenceKind.values),
        correspondence_kinds=set(CorrespondenceKind.values),
    )
    assert problems == []


def test_it_finds_mistakes_in_a_template():
    broken = dataclasses.replace(
        TEMPLATES["client-change"],
        tasks=(
            TaskSpec(
                key="x",
                ref="1",
                phase=99,
                title="x",
                guidance="",
                depends_on=("y",),
                check="nonsense",
                branch="C",
            ),
        ),
    )
    problems = template_problems(
        broken, checks=set(), evidence_kinds=set(), correspondence_kinds=set()
    )
    assert "x depends on y, which does not come before it" in problems
    assert "x is in unknown phase 99" in problems
    assert "x has unknown check nonsense" in problems
    assert "x needs both a branch and a decision, or neither" in problems


def test_the_client_change_template_follows_the_playbook():
    template = TEMPLATES["client-change"]
    query = template.task("nsd-query")
    assert NATIONAL_SERVICE_DESK in query.guidance and ITOC in query.guidance
    assert query.correspondence == CorrespondenceKind.NSD_CHANGE_QUERY
    assert {"review-submission", "assess-code", "production-ips"} <= {t.key for t in template.tasks}
    (decision,) = template.decisions
    assert {o.key: o.branches for o in decision.options} == {
        "valid": ("A",),
        "invalidated": ("B", "A"),
    }
    scenario_b = [t for t in template.tasks if t.branch == "B"]
    assert "2-3 hours" in " ".join(t.title for t in scenario_b)
    send_csr = template.task("send-live-csr")
    assert NATIONAL_SERVICE_DESK in send_csr.guidance and "not ITOC" in send_csr.guidance
    assert (send_csr.days, send_csr.published) == (5, True)
    assert template.task("production-csr").check == TaskCheck.TARGET_CSR
    assert template.task("production-ips").check == TaskCheck.ALLOW_LIST
    assert template.task("go-live").check == TaskCheck.HANDSHAKE


def test_the_mesh_api_template_covers_phases_0_to_8():
    template = TEMPLATES["mesh-api"]
    assert [number for number, _ in template.phases] == list(range(9))
    assert {t.phase for t in template.tasks} == set(range(9))
    assert template.task("use-case").days == 10 and template.task("supplier-pack").days == 10
    assert template.task("int-csr").correspondence == CorrespondenceKind.INT_CSR_REQUEST
    assert template.task("dspt").review_months == 12
    assert not any(t.required for t in template.tasks if t.phase == 8)


def test_it_copies_the_template_into_the_plan():
    plan = make_plan()
    template = TEMPLATES["client-change"]
    assert (plan.template_key, plan.template_version, plan.title) == (
        "client-change",
        template.version,
        template.name,
    )
    assert list(plan.tasks.values_list("key", flat=True)) == [t.key for t in template.tasks]
    go_live = plan.tasks.get(key="go-live")
    assert set(go_live.depends_on.values_list("key", flat=True)) == set(
        template.task("go-live").depends_on
    )
    assert go_live.system_check == TaskCheck.HANDSHAKE and go_live.branch == "A"
    decision = plan.decisions.get()
    assert decision.answers.key == "nsd-query"
    assert set(decision.tasks.values_list("branch", flat=True)) == {"A", "B"}


def test_a_new_template_version_never_rewrites_a_plan_under_way(monkeypatch, client, superuser):
    plan = make_plan()
    original = list(plan.tasks.values_list("key", "title", "guidance", "turnaround_days"))
    old = TEMPLATES["client-change"]
    new_task = TaskSpec(key="new-step", ref="1.5", phase=1, title="A step added later", guidance="")
    changed = dataclasses.replace(
        old,
        version=old.version + 1,
        name="Client change (revised)",
        tasks=(
            dataclasses.replace(old.tasks[0], title="Reworded", days=3),
            *old.tasks[1:],
            new_task,
        ),
    )
    monkeypatch.setitem(TEMPLATES, "client-change", changed)

    plan.refresh_from_db()
    assert list(plan.tasks.values_list("key", "title", "guidance", "turnaround_days")) == original
    assert plan.template_version == old.version and plan.title == old.name

    other = make_plan(
        organisation=make_organisation(name="Other Org", ods_code="Y12"),
        live=False,
        integration=False,
    )
    assert other.template_version == old.version + 1
    assert other.tasks.get(key="nsd-query").title == "Reworded"
    assert other.tasks.filter(key="new-step").exists()
    assert not plan.tasks.filter(key="new-step").exists()

    client.force_login(superuser)
    html = client.get(reverse("onboarding:detail", args=[plan.pk])).content.decode()
    assert f"version {old.version + 1} exists; this plan keeps its own copy" in html


def test_it_allows_one_plan_per_organisation_and_environment():
    plan = make_plan()
    with pytest.raises(OnboardingError, match="already has a live plan"):
        make_plan(organisation=plan.organisation, live=False, integration=False)
    assert Plan.objects.count() == 1


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_estimate_says_so_and_every_version_has_a_change_line(key):
    template = TEMPLATES[key]
    unlabelled = [
        t.key
        for t in template.tasks
        if t.days is not None and not t.published and "estimate" not in t.turnaround
    ]
    assert unlabelled == []
    assert len(template.changes) == template.version
    assert template.changes[-1].startswith(f"Version {template.version}:")


def test_the_connection_agreement_waits_for_the_new_witnessed_test_only_in_scenario_b():
    assert TEMPLATES["client-change"].task("connection-agreement").depends_on == (
        "assess-code",
        "witness-test",
    )
    b_plan = make_plan(start_date=date(2026, 11, 23))
    services.decision_record(
        decision=b_plan.decisions.get(), option_key="invalidated", reply_text="New test."
    )
    witness = b_plan.tasks.get(key="witness-test")
    agreement = b_plan.tasks.get(key="connection-agreement")
    assert agreement.due_date == add_working_days(witness.due_date, 5)
    with pytest.raises(OnboardingError, match="Finish B2"):
        services.task_set_status(task=agreement, status="done")

    a_plan = make_plan(
        organisation=make_organisation(name="Other Org", ods_code="Y12"),
        live=False,
        integration=False,
        start_date=date(2026, 11, 23),
    )
    services.decision_record(
        decision=a_plan.decisions.get(), option_key="valid", reply_text="Still valid."
    )
    assess = a_plan.tasks.get(key="assess-code")
    agreement = a_plan.tasks.get(key="connection-agreement")
    assert agreement.due_date == add_working_days(assess.due_date, 5)
    blockers = services.task_blockers(agreement)
    assert not any("B2" in blocker for blocker in blockers)


def test_the_mesh_api_agreement_follows_the_witnessed_test_not_the_certificate():
    template = TEMPLATES["mesh-api"]
    assert "book-witness" in template.task("agreement").depends_on
    assert "conformance" not in template.task("agreement").depends_on


def test_the_answer_certificate_invalidated_is_copied_with_what_it_invalidates():
    decision = make_plan().decisions.get()
    assert decision.option("invalidated")["invalidates"] == ["conformance_certificate"]
    assert decision.option("valid")["invalidates"] == []
