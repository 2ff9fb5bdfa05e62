"""Prometheus metrics, read from the database at scrape time (so every worker node agrees).

Counters (`*_total`) are running totals (`MessageCount`) bumped in the transaction that moves a
message, so a scrape reads a few rows however many messages there are, and a message re-queued by
a person never makes a counter go down. What a message is now (failed, queued, waiting for an
acknowledgement) is a gauge.
"""

from __future__ import annotations

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from portal.certificates.models import Certificate
from portal.mailboxes.models import Mailbox
from portal.messaging.models import Direction, Heartbeat, Message, MessageCount, Status

DIRECTIONS = {Direction.INBOUND: "in", Direction.OUTBOUND: "out"}


class NeoMeshCollector(Collector):
    def collect(self):
        now = timezone.now()
        mailboxes = dict(Mailbox.objects.values_list("pk", "mailbox_id"))
        yield from self._traffic(mailboxes)
        yield self._failures(mailboxes)
        yield self._failed_now(mailboxes)
        yield from self._mailbox_health(now)
        yield self._outbox_depth(mailboxes)
        yield from self._oldest_unacknowledged(mailboxes, now)
        yield self._certificates(mailboxes, now)
        yield self._heartbeats(now)

    def _traffic(self, mailboxes):
        messages = CounterMetricFamily(
            "neomesh_messages",
            "Messages moved: accepted by MESH (out) or downloaded from MESH (in)",
            labels=["mailbox", "direction"],
        )
        volume = CounterMetricFamily(
            "neomesh_message_bytes",
            "Payload bytes of the messages counted in neomesh_messages_total",
            labels=["mailbox", "direction"],
        )
        rows = (
            MessageCount.objects.filter(event=MessageCount.Event.MOVED)
            .values("mailbox_id", "direction")
            .annotate(n=Sum("messages"), size=Sum("bytes"))
            .order_by()
        )
        for row in rows:
            labels = [mailboxes[row["mailbox_id"]], DIRECTIONS[row["direction"]]]
            messages.add_metric(labels, row["n"])
            volume.add_metric(labels, row["size"])
        return messages, volume

    def _failures(self, mailboxes):
        """Each time an outbound message became failed (a failure that both tracking and a report
        tell of counts once; a resent message that fails again counts again)."""
        family = CounterMetricFamily(
            "neomesh_failures",
            "Outbound messages that failed (rejected, undeliverable or given up), by MESH code "
            "(none: no code given)",
            labels=["mailbox", "code"],
        )
        rows = MessageCount.objects.filter(event=MessageCount.Event.FAILED).values_list(
            "mailbox_id", "code", "messages"
        )
        for mailbox_pk, code, count in rows:
            family.add_metric([mailboxes[mailbox_pk], code or "none"], count)
        return family

    def _failed_now(self, mailboxes):
        family = GaugeMetricFamily(
            "neomesh_failed_messages",
            "Outbound messages failed now and not resent, by MESH code (none: no code given)",
            labels=["mailbox", "code"],
        )
        rows = (
            Message.objects.outbound()
            .filter(status=Status.FAILED)
            .values("mailbox_id", "mesh_status_code")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            family.add_metric(
                [mailboxes[row["mailbox_id"]], row["mesh_status_code"] or "none"], row["n"]
            )
        return family

    def _mailbox_health(self, now):
        lag = GaugeMetricFamily(
            "neomesh_poll_lag_seconds", "Seconds since the last completed poll", labels=["mailbox"]
        )
        handshake = GaugeMetricFamily(
            "neomesh_handshake_ok", "1 if the last handshake succeeded", labels=["mailbox"]
        )
        backlog = GaugeMetricFamily(
            "neomesh_inbox_backlog",
            "Messages left in the MESH inbox after the last poll",
            labels=["mailbox"],
        )
        for mailbox in Mailbox.objects.all():
            if mailbox.last_poll_at:
                lag.add_metric([mailbox.mailbox_id], (now - mailbox.last_poll_at).total_seconds())
            handshake.add_metric([mailbox.mailbox_id], 1 if mailbox.last_handshake_ok else 0)
            if mailbox.inbox_backlog is not None:
                backlog.add_metric([mailbox.mailbox_id], mailbox.inbox_backlog)
        return lag, handshake, backlog

    def _outbox_depth(self, mailboxes):
        family = GaugeMetricFamily(
            "neomesh_outbox_depth", "Outbound messages queued or sending", labels=["mailbox"]
        )
        counts = dict(
            Message.objects.outbound()
            .filter(status__in=Status.in_flight)
            .values_list("mailbox_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for pk, mailbox_id in mailboxes.items():
            family.add_metric([mailbox_id], counts.get(pk, 0))
        return family

    def _oldest_unacknowledged(self, mailboxes, now):
        sent = GaugeMetricFamily(
            "neomesh_oldest_sent_unacknowledged_seconds",
            "Age of the oldest outbound message accepted by MESH that its recipient has not yet "
            "acknowledged (MESH gives up after 5 days and reports it undelivered)",
            labels=["mailbox"],
        )
        received = GaugeMetricFamily(
            "neomesh_oldest_received_unacknowledged_seconds",
            "Age of the oldest inbound message stored here but not yet acknowledged to MESH",
            labels=["mailbox"],
        )
        for family, waiting, since in (
            (sent, Message.objects.outbound().filter(status=Status.ACCEPTED), "accepted_at"),
            (received, Message.objects.inbound().filter(status=Status.RECEIVED), "received_at"),
        ):
            rows = (
                waiting.filter(**{f"{since}__isnull": False})
                .values("mailbox_id")
                .annotate(oldest=Min(since))
                .order_by()
            )
            for row in rows:
                age = (now - row["oldest"]).total_seconds()
                family.add_metric([mailboxes[row["mailbox_id"]]], age)
        return sent, received

    def _certificates(self, mailboxes, now):
        family = GaugeMetricFamily(
            "neomesh_certificate_days_left",
            "Days until the active client certificate expires",
            labels=["mailbox"],
        )
        for certificate in Certificate.objects.active().filter(~Q(not_after=None)):
            family.add_metric(
                [mailboxes[certificate.mailbox_id]],
                (certificate.not_after - now).total_seconds() / 86400,
            )
        return family

    def _heartbeats(self, now):
        family = GaugeMetricFamily(
            "neomesh_worker_heartbeat_age_seconds",
            "Seconds since a worker last ran each recurring job",
            labels=["job"],
        )
        for beat in Heartbeat.objects.all():
            family.add_metric([beat.name], (now - beat.at).total_seconds())
        return family
