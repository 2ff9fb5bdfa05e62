"""Measured in Chromium: the 30-day chart and the message list on a phone (390×844), and wide
tables at 1366×900 that wrap or scroll inside a focusable region instead of being cut off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from portal.audit.services import Actor, record
from portal.messaging.models import Direction
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
LONG_ID = "20261203081500123456_ABCDEF" * 2
LONG_DETAIL = "Delivered to /srv/exports/" + "very-long-directory-name-without-spaces-" * 6


@pytest.fixture
def data(admin_user, auditor_user):
    live = make_mailbox("X26LIVE1", environment="live")
    sandbox = make_mailbox("X26ABC1")
    now = timezone.now()
    for n in range(12):
        make_message(
            live if n % 2 else sandbox,
            payload=None,
            direction=Direction.OUTBOUND if n % 3 else Direction.INBOUND,
            mesh_message_id=f"{LONG_ID}{n}",
            workflow_id="PATHOLOGY_RESULTS_TRANSFER_WORKFLOW_LONG_NAME",
            subject=f"Monthly pathology results for the whole region, batch {n}",
            filename=f"pathology_results_{n}_without_any_spaces_in_the_name_at_all.csv",
            created_at=now - timedelta(days=n % 28, minutes=n),
        )
    for n in range(5):
        record(
            actor=Actor(kind="worker", label="worker vm:30377"),
            action="onboarding.correspondence_downloaded",
            detail=f"{LONG_DETAIL}{n}",
            object_type="messaging.message",
            object_repr=f"{LONG_ID}{n}",
        )
    return {"admin": admin_user, "auditor": auditor_user}


def signed_in(browser, live_server, user, viewport):
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height, text: e.textContent}; })",
    )


def not_clipped(page, wrap: str) -> dict:
    return page.eval_on_selector(
        wrap,
        "w => ({scroll: w.scrollWidth, client: w.clientWidth, tabindex: w.getAttribute('tabindex'),"
        " page: document.documentElement.scrollWidth, viewport: window.innerWidth})",
    )


def test_phone_chart_and_message_list(browser, live_server, data, tmp_path):
    page = signed_in(browser, live_server, data["admin"], PHONE)
    page.goto(live_server.url + "/")
    labels = boxes(page, "svg.chart text")
    chart = boxes(page, "svg.chart")[0]
    page.screenshot(path=str(tmp_path / "phone-dashboard.png"), full_page=True)
    assert labels and all(label["h"] >= 10 for label in labels), labels  # was about 4 px
    axis = sorted(
        (b for b in labels if b["y"] > chart["y"] + chart["h"] * 0.8), key=lambda b: b["x"]
    )
    assert len(axis) >= 5
    for left, right in zip(axis, axis[1:], strict=False):
        assert left["x"] + left["w"] <= right["x"], (left, right)  # the day labels never overlap
    assert all(
        chart["x"] - 1 <= b["x"] and b["x"] + b["w"] <= chart["x"] + chart["w"] + 1 for b in labels
    )

    page.goto(live_server.url + "/messages/")
    page.screenshot(path=str(tmp_path / "phone-messages.png"), full_page=True)
    panel = page.locator("details.filter-panel")
    assert panel.evaluate("d => d.open") is False  # ten filters collapsed behind one disclosure
    assert page.locator("details.filter-panel > summary").is_visible()
    assert not page.get_by_label("Workflow id").is_visible()
    heads = {b["text"].strip(): b["w"] for b in boxes(page, "table.messages thead th")}
    for useful in ("Created", "From → to", "Subject / file", "Status"):
        assert heads[useful] > 40, heads
    assert heads["MESH message id"] == 0 and heads["Workflow"] == 0
    sizes = not_clipped(page, ".table-wrap")
    assert sizes["scroll"] <= sizes["client"] + 1, sizes  # every shown column fits the phone
    assert sizes["page"] <= sizes["viewport"], sizes
    panel.locator("summary").click()
    assert page.get_by_label("Workflow id").is_visible()
    page.context.close()


def test_wide_tables_are_not_clipped_at_1366(browser, live_server, data, tmp_path):
    page = signed_in(browser, live_server, data["auditor"], LAPTOP)
    for path, column in (("/messages/", "MESH message id"), ("/audit/", "Detail")):
        page.goto(live_server.url + path)
        page.screenshot(path=str(tmp_path / f"laptop-{path.strip('/')}.png"), full_page=True)
        assert page.locator("details.filter-panel").evaluate("d => d.open")  # open when wide
        sizes = not_clipped(page, ".table-wrap")
        assert sizes["scroll"] <= sizes["client"] + 1, (path, sizes)
        assert sizes["tabindex"] == "0"  # were it to scroll, the keyboard could scroll it
        assert sizes["page"] <= sizes["viewport"], (path, sizes)
        wrap = boxes(page, ".table-wrap")[0]
        index = [b["text"].strip() for b in boxes(page, ".table-wrap thead th")].index(column)
        cells = boxes(page, f".table-wrap tbody tr > :nth-child({index + 1})")
        assert cells and all(c["x"] + c["w"] <= wrap["x"] + wrap["w"] + 1 for c in cells), path
    page.context.close()
