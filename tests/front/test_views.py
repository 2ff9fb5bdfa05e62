from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import Verification
from portal.certificates.models import Certificate
from portal.mailboxes.models import Environment, Mailbox
from portal.messaging.models import Direction, Status
from tests.accounts.access import (
    ALL_ROLES,
    PERSONAS,
    as_persona,
    assert_access,
    assert_no_inline_code,
    make_certificate,
    make_message,
)
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def healthy(mailbox_id: str, **kwargs) -> Mailbox:
    now = timezone.now()
    kwargs.setdefault("last_handshake_at", now)
    kwargs.setdefault("last_handshake_ok", True)
    kwargs.setdefault("last_poll_at", now)
    kwargs.setdefault("last_poll_ok", True)
    return make_mailbox(mailbox_id, **kwargs)


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_lets_every_role_see_the_dashboard(client, request, persona):
    as_persona(client, request, persona)
    assert_access(client.get(reverse("dashboard:home")), persona, ALL_ROLES)


def test_it_shows_one_card_per_mailbox_with_attention_first(client, admin_user):
    healthy("X26AAA1")
    make_mailbox("X26ZZZ9", last_handshake_ok=False, last_handshake_at=timezone.now())
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:home"))
    ids = [m.mailbox_id for m in response.context["mailboxes"]]
    assert ids == ["X26ZZZ9", "X26AAA1"]
    html = response.content.decode()
    assert "Last handshake failed" in html
    assert "1 of 2 mailboxes needs attention" in html
    assert '<span class="badge env env-sandbox">SANDBOX</span>' in html
    assert_no_inline_code(html)


def test_it_shows_live_in_red_and_flags_a_missing_certificate(client, admin_user):
    healthy("X26LIV1", environment=Environment.LIVE)
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert '<span class="badge env env-live">LIVE</span>' in html
    assert "No active certificate" in html


def test_it_shows_certificate_days_left_with_a_warning_inside_90_days(client, admin_user):
    mailbox = healthy("X26ABC1")
    not_after = timezone.now() + timedelta(days=30, hours=1)
    make_certificate(mailbox, status=Certificate.Status.ACTIVE, not_after=not_after)
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert '<span class="badge status-attention">30 days left</span>' in html
    assert "Certificate expires in 30 days" in html


def test_it_says_expired_once_the_daily_check_has_marked_the_certificate_expired(
    client, admin_user
):
    mailbox = healthy("X26LIV1", environment=Environment.LIVE)
    not_after = timezone.now() - timedelta(days=2)
    make_certificate(mailbox, status=Certificate.Status.EXPIRED, not_after=not_after)
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "Certificate expired" in html
    assert "No active certificate" not in html


def test_it_measures_the_oldest_unacknowledged_message_against_the_5_day_limit(client, admin_user):
    mailbox = healthy("X26ABC1")
    four_days_ago, nine_days_ago = (
        timezone.now() - timedelta(days=4),
        timezone.now() - timedelta(days=9),
    )
    make_message(
        mailbox, status=Status.RECEIVED, received_at=four_days_ago, created_at=four_days_ago
    )
    make_message(
        mailbox, status=Status.ACKNOWLEDGED, received_at=nine_days_ago, created_at=nine_days_ago
    )
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:home"))
    card = response.context["mailboxes"][0]
    assert card.unacknowledged_overdue
    assert "4\xa0days of 5 days" in response.content.decode()
    assert any("unacknowledged" in reason for reason in card.reasons)


def test_the_chart_axis_labels_are_short_enough_for_a_phone():
    from portal.lib.charts import nice_ceiling, short_number

    assert [short_number(n) for n in (0, 950, 1000, 1500, 20000, 1_500_000)] == [
        "0",
        "950",
        "1k",
        "1.5k",
        "20k",
        "1.5M",
    ]
    for peak in (3, 47, 999, 12_345, 987_654, 4_321_000):
        top, step = nice_ceiling(peak)
        assert all(len(short_number(v)) <= 4 for v in range(0, top + 1, step))


def test_it_charts_30_days_of_messages_in_and_out_with_a_table(client, admin_user):
    mailbox = healthy("X26ABC1")
    for _ in range(2):
        make_message(mailbox, payload=None)
    make_message(mailbox, payload=None, direction=Direction.OUTBOUND)
    make_message(mailbox, payload=None, created_at=timezone.now() - timedelta(days=40))
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:home"))
    chart = response.context["chart"]
    assert (chart.total_in, chart.total_out) == (2, 1)
    assert len(chart.days) == 30
    assert chart.days[-1].inbound == 2 and chart.days[-1].outbound == 1
    html = response.content.decode()
    assert '<svg class="chart"' in html and "<title>" in html
    assert "2 in, 1 out." in html
    assert '<td class="num">2</td><td class="num">1</td>' in html


def test_it_shows_the_last_audit_verification(client, auditor_user):
    Verification.objects.create(ok=True, records_checked=12, at=timezone.now() - timedelta(days=2))
    Verification.objects.create(ok=False, records_checked=40, first_broken_seq=7)
    client.force_login(auditor_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "failed verification" in html
    assert "first broken at record #7" in html


def test_it_says_when_the_audit_trail_was_never_verified(client, auditor_user):
    client.force_login(auditor_user)
    assert b"has not been verified yet" in client.get(reverse("dashboard:home")).content


def populate(count: int, start: int) -> None:
    for index in range(start, start + count):
        mailbox = healthy(f"X26Q{index:03d}")
        make_certificate(
            mailbox,
            status=Certificate.Status.ACTIVE,
            not_after=timezone.now() + timedelta(days=200),
        )
        make_message(mailbox, payload=None)
        make_message(mailbox, payload=None, direction=Direction.OUTBOUND)


def test_it_renders_in_a_constant_number_of_queries(client, admin_user, django_assert_num_queries):
    client.force_login(admin_user)
    populate(3, 0)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("dashboard:home")).status_code == 200
    populate(27, 100)
    Verification.objects.create(ok=True, records_checked=1)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("dashboard:home"))
    assert len(response.context["mailboxes"]) == 30


def test_a_new_mailbox_not_yet_checked_says_checking_not_a_warning(client, admin_user):
    new = make_mailbox("X26NEW1")
    old = make_mailbox("X26OLD1")
    Mailbox.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    card = html.split(f'id="mailbox-{new.pk}"')[1].split("</article>")[0]
    assert "Checking…" in card and "Needs attention" not in card
    # Not checked an hour after it was added: the workers are not doing their job.
    stale = html.split(f'id="mailbox-{old.pk}"')[1].split("</article>")[0]
    assert "No successful handshake in the last 24 hours" in stale
    detail = client.get(reverse("mailboxes:detail", args=[new.pk])).content.decode()
    assert "Not checked yet" in detail and "Needs attention" not in detail
    # A failure ends "checking": it is a problem now.
    Mailbox.objects.filter(pk=new.pk).update(
        last_handshake_ok=False, last_handshake_at=timezone.now()
    )
    detail = client.get(reverse("mailboxes:detail", args=[new.pk])).content.decode()
    assert "Checking…" not in detail and "Last handshake failed" in detail


def test_the_pages_serve_their_live_parts_alone(client, admin_user):
    mailbox = make_mailbox("X26NEW1", last_error="Handshake refused", last_error_at=timezone.now())
    client.force_login(admin_user)
    home = client.get(reverse("dashboard:home")).content.decode()
    assert 'id="live-mailboxes" data-live-url="/?live=1" data-live-every="' in home
    live = client.get(reverse("dashboard:home"), {"live": "1"}).content.decode()
    assert live.startswith('<div id="live-mailboxes">') and "Handshake refused" in live
    assert "Messages in the last 30 days" not in live and "<html" not in live
    detail_url = reverse("mailboxes:detail", args=[mailbox.pk])
    live = client.get(detail_url, {"live": "1"}).content.decode()
    assert 'id="live-state"' in live and 'id="live-health"' in live
    assert "Handshake refused" in live and "Workflows" not in live
    listing = client.get(reverse("mailboxes:list"), {"environment": "sandbox"}).content.decode()
    assert 'data-live-url="/mailboxes/?environment=sandbox&amp;live=1"' in listing
    live = client.get(reverse("mailboxes:list"), {"live": "1"}).content.decode()
    assert 'id="live-mailbox-rows"' in live and "X26NEW1" in live
    assert_no_inline_code(home)


def test_a_live_part_is_refused_to_whoever_may_not_see_the_page(client):
    response = client.get(reverse("dashboard:home"), {"live": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
