"""The API docs page works in a real browser under the site's unchanged CSP."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_it_renders_every_operation_without_csp_violations(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(live_server.url + "/api/v1/docs/")
        page.wait_for_selector(".opblock", timeout=20_000)
        operations = page.locator(".opblock-summary-path").all_inner_texts()
        page.screenshot(path=str(tmp_path / "docs.png"))
        browser.close()
    assert {"/api/v1/messages/", "/api/v1/messages/{id}/payload/"} <= {
        o.replace("\u200b", "") for o in operations
    }
    assert not [p for p in problems if "Content Security Policy" in p], problems
