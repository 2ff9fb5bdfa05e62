"""Prometheus metrics, read from the database at scrape time (so every worker node agrees)."""

from __future__ import annotations

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from portal.certificates.models import Certificate
from portal.mailboxes.models import Mailbox
from portal.messaging.models import Direction, Message, Status

from .models import Heartbeat

DIRECTIONS = {Direction.INBOUND: "in", Direction.OUTBOUND: "out"}


class NeoMeshCollector(Collector):
    def collect(self):
        now = timezone.now()
        mailboxes = {m.pk: m for m in Mailbox.objects.all()}
        yield from self._traffic(mailboxes)
        yield self._failures(mailboxes)
        yield from self._mailbox_health(mailboxes, now)
        yield self._outbox_depth(mailboxes)
        yield self._oldest_unacknowledged(mailboxes, now)
        yield self._certificates(mailboxes, now)
        yield self._heartbeats(now)

    def _traffic(self, mailboxes):
        messages = CounterMetricFamily(
            "neomesh_messages",
            "Messages moved, by mailbox and direction",
            labels=["mailbox", "direction"],
        )
        volume = CounterMetricFamily(
            "neomesh_message_bytes",
            "Payload bytes moved, by mailbox and direction",
            labels=["mailbox", "direction"],
        )
        rows = (
            Message.objects.exclude(status__in=[Status.QUEUED, Status.SENDING])
            .values("mailbox_id", "direction")
            .annotate(n=Count("id"), size=Sum("size_bytes"))
        )
        for row in rows:
            labels = [
                mailboxes[row["mailbox_id"]].mailbox_id,
                DIRECTIONS.get(row["direction"], row["direction"]),
            ]
            messages.add_metric(labels, row["n"])
            volume.add_metric(labels, row["size"] or 0)
        yield messages
        yield volume

    def _failures(self, mailboxes):
        family = CounterMetricFamily(
            "neomesh_failures",
            "Failed outbound messages, by mailbox and MESH code",
            labels=["mailbox", "code"],
        )
        rows = (
            Message.objects.outbound()
            .filter(status=Status.FAILED)
            .values("mailbox_id", "mesh_status_code")
        )
        for row in rows.annotate(n=Count("id")):
            family.add_metric(
                [mailboxes[row["mailbox_id"]].mailbox_id, row["mesh_status_code"] or "none"],
                row["n"],
            )
        return family

    def _mailbox_health(self, mailboxes, now):
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
        for mailbox in mailboxes.values():
            if mailbox.last_poll_at:
                lag.add_metric([mailbox.mailbox_id], (now - mailbox.last_poll_at).total_seconds())
            handshake.add_metric([mailbox.mailbox_id], 1 if mailbox.last_handshake_ok else 0)
            if mailbox.inbox_backlog is not None:
                backlog.add_metric([mailbox.mailbox_id], mailbox.inbox_backlog)
        yield from (lag, handshake, backlog)

    def _outbox_depth(self, mailboxes):
        family = GaugeMetricFamily(
            "neomesh_outbox_depth", "Outbound messages queued or sending", labels=["mailbox"]
        )
        counts = dict(
            Message.objects.outbound().filter(status__in=Status.in_flight)
            .values_list("mailbox_id").annotate(n=Count("id"))
        )  # fmt: skip
        for pk, mailbox in mailboxes.items():
            family.add_metric([mailbox.mailbox_id], counts.get(pk, 0))
        return family

    def _oldest_unacknowledged(self, mailboxes, now):
        family = GaugeMetricFamily(
            "neomesh_oldest_unacknowledged_seconds",
            "Age of the oldest inbound message stored but not yet acknowledged (MESH gives up at 5 days)",
            labels=["mailbox"],
        )
        rows = (
            Message.objects.inbound()
            .filter(status=Status.RECEIVED)
            .values("mailbox_id")
            .annotate(oldest=Min("received_at"))
        )
        for row in rows:
            family.add_metric(
                [mailboxes[row["mailbox_id"]].mailbox_id], (now - row["oldest"]).total_seconds()
            )
        return family

    def _certificates(self, mailboxes, now):
        family = GaugeMetricFamily(
            "neomesh_certificate_days_left",
            "Days until the active client certificate expires",
            labels=["mailbox"],
        )
        for certificate in Certificate.objects.active().filter(~Q(not_after=None)):
            family.add_metric(
                [mailboxes[certificate.mailbox_id].mailbox_id],
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
