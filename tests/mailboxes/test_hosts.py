"""Stored credentials go only to MESH: published hosts outside the sandbox, loopback for a sandbox.

The attack this guards against: a mailbox admin points a live mailbox at their own server, unticks
TLS verification and presses "Test connection" without re-entering the secrets, and the server
receives a token made with the live password. And a plain-HTTP sandbox mailbox used to make the
portal fetch internal addresses and show part of the answer.
"""

from __future__ import annotations

import http.server
import threading

import pytest
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.mailboxes.hosts import base_url_problem
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import MailboxNotReady, mailbox_handshake, mesh_client
from tests.factories import make_mailbox
from tests.mailboxes.test_views import mailbox_data
from tests.sandbox import free_port

pytestmark = pytest.mark.django_db
LIVE_PASSWORD, LIVE_KEY = "live-Pa55word-9f2k", "live-shared-key-7x"


class CaptureServer(http.server.ThreadingHTTPServer):
    """A server that records the Authorization headers it receives and answers with a secret."""

    def __init__(self):
        self.seen: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.seen.append(self.headers.get("Authorization", ""))
                body = b'{"errorDescription": "INTERNAL-SECRET-42", "errorEvent": "LEAKED"}'
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def capture():
    server = CaptureServer()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def live(db):
    return make_mailbox("X26LIVE1", environment="live", password=LIVE_PASSWORD, shared_key=LIVE_KEY)


def edit(client, mailbox, **overrides):
    fields = {
        "organisation": mailbox.organisation_id,
        "environment": mailbox.environment,
        "mailbox_id": mailbox.mailbox_id,
        "new_password": "",
        "new_shared_key": "",
    }
    data = mailbox_data(**(fields | overrides))
    return client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data)


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ("live", "https://capture.example.org"),
        ("live", "https://mesh-sync.spineservices.nhs.uk.evil.example"),
        ("live", "https://msg.intspineservices.nhs.uk"),  # integration's host, not live's
        ("integration", "https://mesh-sync.spineservices.nhs.uk"),
        ("integration", "https://user@msg.intspineservices.nhs.uk"),
        ("sandbox", "http://10.0.0.5:6379"),
        ("sandbox", "http://169.254.169.254"),
        ("sandbox", "http://metadata.internal"),
    ],
)
def test_it_refuses_a_base_url_outside_the_environments_hosts(
    client, admin_user, live, environment, url
):
    client.force_login(admin_user)
    mailbox = live if environment == "live" else make_mailbox("X26ABC1", environment=environment)
    response = edit(client, mailbox, environment=environment, base_url=url)
    assert response.status_code == 200
    assert response.context["form"].errors["base_url"]
    mailbox.refresh_from_db()
    assert mailbox.base_url == ""


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ("live", "https://mesh-sync.spineservices.nhs.uk"),
        ("live", "https://MESH-SYNC.spineservices.nhs.uk:443/"),
        ("live", "https://mesh-sync.national.ncrs.nhs.uk"),
        ("integration", "https://msg.intspineservices.nhs.uk"),
        ("deployment", "https://msg.depspineservices.nhs.uk"),
        ("sandbox", "http://127.0.0.1:8700"),
        ("sandbox", "https://localhost:8701"),
        ("sandbox", "http://[::1]:8700"),
    ],
)
def test_it_accepts_the_published_hosts_and_a_local_sandbox(environment, url):
    assert base_url_problem(environment, url) is None


def test_an_operator_allow_list_and_sandbox_hosts_widen_it(settings):
    assert base_url_problem("live", "https://mesh-relay.trust.nhs.uk") is not None
    assert base_url_problem("sandbox", "http://mesh-sandbox:8700") is not None
    settings.MESH_ALLOWED_BASE_URLS = ["https://mesh-relay.trust.nhs.uk"]
    settings.MESH_SANDBOX_HOSTS = ["mesh-sandbox"]
    assert base_url_problem("live", "https://mesh-relay.trust.nhs.uk/") is None
    assert base_url_problem("sandbox", "http://mesh-sandbox:8700") is None


def test_tls_verification_cannot_be_turned_off_outside_the_sandbox(client, admin_user, live):
    client.force_login(admin_user)
    data = {"verify_tls": None}
    response = edit(client, live, **data)
    assert "Only a sandbox mailbox may skip TLS verification" in " ".join(
        response.context["form"].errors["verify_tls"]
    )
    assert Mailbox.objects.get(pk=live.pk).verify_tls is True


def test_changing_where_it_connects_clears_the_stored_secrets(client, admin_user):
    mailbox = make_mailbox(
        "X26INT01", environment="integration", password=LIVE_PASSWORD, shared_key=LIVE_KEY
    )
    client.force_login(admin_user)
    response = edit(client, mailbox, base_url="https://msg.int.spine2.ncrs.nhs.uk")
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.password, mailbox.shared_key) == ("", "")
    assert mailbox.password_changed_at is None
    record = AuditRecord.objects.get(action="mailbox.secrets_cleared")
    assert record.detail == "changed: the MESH host"
    page = client.get(response["Location"]).content.decode()
    assert "were cleared because the MESH host changed" in page


@pytest.mark.parametrize(
    "overrides",
    [{"environment": "deployment"}, {"ca_bundle": "-----BEGIN CERTIFICATE-----"}],
)
def test_changing_the_environment_or_tls_settings_clears_them_too(overrides):
    mailbox = make_mailbox(
        "X26INT01", environment="integration", password=LIVE_PASSWORD, shared_key=LIVE_KEY
    )
    for field, value in overrides.items():
        setattr(mailbox, field, value)
    mailbox.save()
    mailbox.refresh_from_db()
    assert (mailbox.password, mailbox.shared_key) == ("", "")


def test_secrets_entered_with_the_change_are_kept_and_other_edits_keep_them(client, admin_user):
    mailbox = make_mailbox(
        "X26INT01", environment="integration", password=LIVE_PASSWORD, shared_key=LIVE_KEY
    )
    client.force_login(admin_user)
    edit(client, mailbox, name="Renamed", poll_interval_minutes="10")
    mailbox.refresh_from_db()
    assert (mailbox.password, mailbox.shared_key) == (LIVE_PASSWORD, LIVE_KEY)
    edit(
        client,
        mailbox,
        base_url="https://msg.int.spine2.ncrs.nhs.uk",
        new_password="a-new-Pa55word",
        new_shared_key="a-new-shared-key",
    )
    mailbox.refresh_from_db()
    assert (mailbox.password, mailbox.shared_key) == ("a-new-Pa55word", "a-new-shared-key")
    assert not AuditRecord.objects.filter(action="mailbox.secrets_cleared").exists()


def test_the_form_says_that_moving_clears_the_secrets(client, admin_user, live):
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:edit", args=[live.pk])).content.decode()
    assert "clears the stored password and shared key" in html


def test_a_live_mailboxs_environment_is_fixed(client, admin_user, live):
    client.force_login(admin_user)
    edit(client, live, environment="integration")
    live.refresh_from_db()
    assert live.environment == "live"
    assert (live.password, live.shared_key) == (LIVE_PASSWORD, LIVE_KEY)
    # Changed any other way (the admin, a shell), validation refuses it too.
    live.environment = "integration"
    with pytest.raises(Exception, match="A live mailbox stays live"):
        live.full_clean()


def test_stored_credentials_never_reach_another_host_however_the_row_was_changed(live, capture):
    # Written past the form (the admin, a shell, an old row): the client refuses to connect.
    Mailbox.objects.filter(pk=live.pk).update(base_url=capture.url, verify_tls=False)
    live.refresh_from_db()
    with pytest.raises(MailboxNotReady, match="connect only to NHS England's published MESH hosts"):
        with mesh_client(live):
            pass
    ok, summary = mailbox_handshake(mailbox=live)
    assert not ok and "published MESH hosts" in summary
    assert capture.seen == []


def test_a_failed_test_connection_never_shows_what_the_server_answered(capture, settings):
    sandbox = make_mailbox("X26ABC1", base_url=capture.url)
    ok, summary = mailbox_handshake(mailbox=sandbox)
    assert not ok and capture.seen, "the sandbox URL on loopback is reached"
    assert "HTTP 403" in summary and "refused the credentials" in summary
    assert "INTERNAL-SECRET-42" not in summary and "LEAKED" not in summary
    sandbox.refresh_from_db()
    assert "INTERNAL-SECRET-42" not in sandbox.last_error
