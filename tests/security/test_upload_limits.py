"""An over-long request body is refused by its Content-Length before a byte of it is read.

Each page has its own limit: the largest file it accepts (plus room for the form around it), or
REQUEST_BODY_MAX_BYTES for pages without uploads. The request's body here is a stream that records
every read, so "refused before reading" is checked, not assumed.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.lib.bodylimit import FORM_OVERHEAD_BYTES
from tests.accounts.access import make_certificate
from tests.factories import make_mailbox
from tests.onboarding.helpers import make_plan, task

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


class RecordingStream:
    """A request body that is empty, and remembers whether anyone tried to read it."""

    def __init__(self):
        self.read_from = False

    def read(self, *args):
        self.read_from = True
        return b""

    def readline(self, *args):
        return self.read()


@pytest.fixture
def pages(settings):
    settings.MESH_MAX_UPLOAD_BYTES = 3 * MIB
    settings.ONBOARDING_EVIDENCE_MAX_BYTES = 2 * MIB
    settings.REQUEST_BODY_MAX_BYTES = 1 * MIB
    mailbox = make_mailbox("X26ABC1")
    plan = make_plan()
    return {
        "send": (reverse("messaging:send"), 3 * MIB + FORM_OVERHEAD_BYTES),
        "evidence": (
            reverse(
                "onboarding:evidence_upload", args=[plan.pk, task(plan, "review-submission").pk]
            ),
            2 * MIB + FORM_OVERHEAD_BYTES,
        ),
        "decision": (
            reverse("onboarding:decision", args=[plan.pk, plan.decisions.get().pk]),
            2 * MIB + FORM_OVERHEAD_BYTES,
        ),
        "certificate": (
            reverse("certificates:install", args=[make_certificate(mailbox).pk]),
            1 * MIB + FORM_OVERHEAD_BYTES,
        ),
        "no uploads": (reverse("mailboxes:create"), 1 * MIB),
    }


def post(client, url: str, length: int, body: RecordingStream):
    return client.generic(
        "POST",
        url,
        CONTENT_TYPE="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": body},
    )


@pytest.mark.parametrize("page", ["send", "evidence", "decision", "certificate", "no uploads"])
def test_it_refuses_an_over_long_body_before_reading_it(client, superuser, pages, page):
    url, limit = pages[page]
    client.force_login(superuser)
    body = RecordingStream()
    response = post(client, url, limit + 1, body)
    assert response.status_code == 413
    assert "refused the upload before receiving it" in response.content.decode()
    assert response["Connection"] == "close"
    assert not body.read_from
    # Up to the page's own limit the request goes on to the page, which reads it.
    body = RecordingStream()
    assert post(client, url, limit, body).status_code != 413
    assert body.read_from


def test_it_names_the_pages_own_limit(client, superuser, pages):
    client.force_login(superuser)
    url, limit = pages["evidence"]
    assert "up to 2.0\xa0MB" in post(client, url, limit + 1, RecordingStream()).content.decode()


def test_it_refuses_a_length_that_is_not_a_number(client, superuser, pages):
    client.force_login(superuser)
    body = RecordingStream()
    response = client.generic(
        "POST", pages["send"][0], CONTENT_LENGTH="lots", **{"wsgi.input": body}
    )
    assert response.status_code == 400 and not body.read_from


def test_the_api_send_answers_over_long_bodies_itself(client, superuser, settings):
    # The API compares Content-Length with MESH's limit itself, in its own error format.
    from tests.api.conftest import make_token

    settings.MESH_MAX_UPLOAD_BYTES = 1000
    secret = make_token(superuser, [make_mailbox("X26ABC1")])[1]
    body = RecordingStream()
    response = client.generic(
        "POST",
        "/api/v1/messages/?mailbox=X26ABC1&recipient=X26ABC2&workflow_id=TEST_WORKFLOW",
        CONTENT_TYPE="application/octet-stream",
        CONTENT_LENGTH=str(50 * MIB),
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **{"wsgi.input": body},
    )
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"].startswith("application/problem+json")
    assert not body.read_from
