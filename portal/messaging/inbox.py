"""Receiving: poll a mailbox, store each message durably, and only then acknowledge it.

For each message in the MESH inbox: download into a temporary file, fsync and rename it into payload
storage, create the Message row and its events in one transaction, then acknowledge. A message
already stored is only acknowledged, so a crash between storing and acknowledging never produces a
duplicate, and a second poll (or a second worker) finds the row and does not store it again.

A payload whose `mex-Content-Checksum` is `sha256:<hex>` (as NeoMesh sends) is checked after the
download; on a mismatch it is neither stored nor acknowledged, so it stays in MESH to be fetched
again, and the poll records the error. Other checksum forms (`md5:...`, bare hex) are not checked:
the header is free text that MESH passes through unverified, senders compute it over whatever they
call the original content (before their own compression or encryption, say), and refusing a message
on a false mismatch would leave it to expire undelivered after 5 days. TLS and gzip's CRC already
catch corruption in transit.

One message's failure is that message's only (see ``quarantine``): a message over a size limit
(``MESH_MAX_MESSAGE_BYTES``, ``MESH_MAX_CHUNK_BYTES``, ``MESH_MAX_EXPANSION_RATIO``,
``MESH_MAX_CHUNKS``), with a bad checksum, an answer meshcore refuses, or a row the database
refuses is recorded with its reason, backed off, then quarantined for a person, and the poll goes
on with the next message. A payload written for a message that is not stored is removed. Every
``mex-*`` header value is made to fit its column before the insert (cut, with a note on the
message). Free disk space is checked before each download: below ``MESH_PAYLOAD_DISK_RESERVE_BYTES``
the rest of the inbox waits in MESH, and no download may eat into the reserve.

Any poll that does not finish (MESH down or refusing the mailbox's credentials, and anything else
not about one message: a full disk, a database that is down) is recorded as failed with its error,
which the dashboard shows.

Several messages at once (`POLL_CONCURRENCY`, default 12): inside one claim, a few threads, each
with its own MESH connection, download messages (each streamed into a durable payload file, its
chunks in order) and acknowledge stored ones, while the thread that lists the inbox does every
database write: as downloads finish it stores them, a batch in one transaction (rows, counters,
events and audit records sealed together, `audit.services.sealed_together`), and only then hands
out their acknowledgements, which it records a batch at a time too. At most four times that many
requests are handed out at once, whatever the backlog. Each download may use only its share of
the free disk above the reserve (room / POLL_CONCURRENCY); one refused for its share alone is
downloaded again once the others have finished, by itself, with the whole room. An error that is
not about one message (MESH down, the claim lost) stops the hand-out, lets the requests already
started finish (what they downloaded is stored and acknowledged), and ends the poll with it. A
worker killed mid-poll leaves each message either not stored (fetched again; at most a payload
file without a row), or stored and not acknowledged (acknowledged, not stored again, by the next
poll). If the acknowledgement reached MESH just before the worker stopped, MESH no longer lists
the message: the next poll acknowledges such stored, unacknowledged messages again by themselves
(``_stranded``), so none stays "received".
"""

from __future__ import annotations

import logging
import queue
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

import meshcore
from portal.audit.services import Actor, record, sealed_together
from portal.lib import payloads
from portal.lib.claims import ClaimHeartbeat
from portal.lib.workers import ThreadsOnDemand, take_finished, worker_name
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import MailboxNotReady, mesh_client, record_error
from portal.onboarding.gate import transfer_blocked_reason

from . import acks, notices, quarantine
from .mesh_codes import explain
from .models import (
    Direction,
    Message,
    MessageCount,
    MessageEvent,
    MessageType,
    MessageWord,
    Status,
)

log = logging.getLogger(__name__)
POLL_LEASE = timedelta(seconds=settings.POLL_CLAIM_LEASE_SECONDS)
POLL_HEARTBEAT_SECONDS = max(1.0, POLL_LEASE.total_seconds() / 4)
SHA256_CHECKSUM_RE = re.compile(r"^\s*sha256:\s*([0-9a-fA-F]{64})\s*$", re.IGNORECASE)
Kind = MessageEvent.Kind


class ChecksumMismatch(Exception):
    """The downloaded payload does not match the checksum its sender gave."""


class PollClaimLost(Exception):
    """Another worker took over this mailbox's poll (ours stopped refreshing its claim)."""


# Errors that are not about one message: they end the poll, and no message is blamed for them.
# Everything else raised while receiving a message is that message's failure (quarantine).
POLL_WIDE_ERRORS = (
    meshcore.MeshAuthenticationError,
    meshcore.MeshTLSError,
    MailboxNotReady,
    PollClaimLost,
    OSError,
    OperationalError,
    InterfaceError,
)
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# How many of a poll's errors its one-line summary names (the task result, the audit detail).
SUMMARY_ERRORS = 3


@dataclass
class PollResult:
    mailbox_id: str
    skipped: str = ""
    listed: int = 0
    downloaded: int = 0
    acknowledged: int = 0
    reports: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.errors

    def add(self, other: PollResult) -> None:
        """Count in what a receiver thread did (the lister counts `listed` and `held`)."""
        self.downloaded += other.downloaded
        self.acknowledged += other.acknowledged
        self.reports += other.reports
        self.errors.extend(other.errors)

    def summary(self) -> str:
        if self.skipped:
            return f"Poll of {self.mailbox_id} skipped: {self.skipped}"
        text = (
            f"Polled {self.mailbox_id}: {self.listed} in the inbox, {self.downloaded} downloaded, "
            f"{self.acknowledged} acknowledged"
        )
        if self.reports:
            text += f", {self.reports} non-delivery report(s)"
        if self.held:
            text += f", {self.held} held back after failures"
        if self.errors:
            shown = "; ".join(self.errors[:SUMMARY_ERRORS])
            more = len(self.errors) - SUMMARY_ERRORS
            text += f"; {len(self.errors)} error(s): {shown}" + (
                f"; and {more} more" if more > 0 else ""
            )
        return text


def _claim_poll(mailbox: Mailbox, worker: str) -> bool:
    return bool(Mailbox.objects.filter(pk=mailbox.pk).claim_poll(worker, lease=POLL_LEASE))


def _release_poll(mailbox: Mailbox, worker: str, **health) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).release_poll_claim(worker, **health)


def mailbox_poll(*, mailbox: Mailbox, worker: str | None = None) -> PollResult:
    """Drain the mailbox's MESH inbox once. Never runs twice at once for one mailbox."""
    worker = worker or worker_name()
    result = PollResult(mailbox.mailbox_id)
    blocked = transfer_blocked_reason(mailbox)
    if blocked:
        result.skipped = blocked
        return result
    if not _claim_poll(mailbox, worker):
        result.skipped = "another poll of this mailbox is running"
        return result

    def still_mine() -> bool:
        return bool(Mailbox.objects.filter(pk=mailbox.pk).refresh_poll_claim(worker))

    finished = False
    try:
        with ClaimHeartbeat(still_mine, POLL_HEARTBEAT_SECONDS) as heartbeat:
            _drain(mailbox, result, heartbeat)
        finished = True
    except (meshcore.MeshError, MailboxNotReady, PollClaimLost) as exc:
        result.errors.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a poll that crashed must not look like a success
        log.error(
            "Poll of %s failed: %s: %s", mailbox.mailbox_id, type(exc).__name__, exc, exc_info=True
        )
        result.errors.append(f"NeoMesh could not finish the poll ({type(exc).__name__}: {exc})")
    finally:
        if not finished and not result.errors:
            # Only an exception nothing may catch (the worker stopping) gets here.
            result.errors.append("The poll was interrupted before it finished")
        _record_poll(mailbox, worker, result)
    return result


def _record_poll(mailbox: Mailbox, worker: str, result: PollResult) -> None:
    now = timezone.now()
    health = {"last_poll_at": now, "last_poll_ok": not result.errors}
    if not result.errors or result.listed:
        health["inbox_backlog"] = max(0, result.listed - result.acknowledged)
    # The start of a run of failures is kept until a poll succeeds.
    health["poll_failing_since"] = (
        Coalesce(F("poll_failing_since"), Value(now)) if result.errors else None
    )
    with transaction.atomic():
        _release_poll(mailbox, worker, **health)
        if result.errors:
            record_error(mailbox, f"Poll failed: {result.errors[0]}")
        notices.poll_result(
            mailbox, ok=not result.errors, error=result.errors[0] if result.errors else "", now=now
        )


def _drain(mailbox: Mailbox, result: PollResult, heartbeat: ClaimHeartbeat | None = None) -> None:
    started = timezone.now()
    failures = quarantine.open_failures(mailbox)
    width = max(1, settings.POLL_CONCURRENCY)
    with mesh_client(mailbox) as client, _Pipeline(mailbox, width, result) as pipeline:
        for group in _groups(client.iter_inbox(), pipeline.limit):
            stored = _stored(mailbox, group)
            for mesh_id in group:
                _check_claim(heartbeat)
                if pipeline.stopping:
                    return  # out of disk space, or an error not about one message: the rest waits
                result.listed += 1
                failure = failures.get(quarantine.failure_key(mesh_id))
                if failure is not None and failure.held():
                    result.held += 1  # backed off or quarantined: left in MESH for now
                    continue
                pipeline.receive(mesh_id, failure, stored.get(mesh_id))
        pipeline.finish()
        pipeline.receive_alone()
        if pipeline.stopping:
            return
        stranded = _stranded(mailbox, before=started)
        for mesh_id, message in _stored(mailbox, stranded).items():
            _check_claim(heartbeat)
            failure = failures.get(quarantine.failure_key(mesh_id))
            if failure is None or not failure.held():
                pipeline.receive(mesh_id, failure, message)


def _groups(ids, size: int):
    """The listed ids a few at a time (one database lookup a group), as MESH lists them."""
    group = []
    for mesh_id in ids:
        group.append(mesh_id)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def _stored(mailbox: Mailbox, mesh_ids: list[str]) -> dict[str, Message]:
    """The messages among these ids that are stored already, by MESH id."""
    rows = Message.objects.filter(
        mailbox=mailbox, direction=Direction.INBOUND, mesh_message_id__in=mesh_ids
    )
    return {message.mesh_message_id: message for message in rows}


# How many messages an earlier poll stored but did not record as acknowledged one poll takes up.
STRANDED_PER_POLL = 100


def _stranded(mailbox: Mailbox, *, before) -> list[str]:
    """What an earlier poll stored and did not record as acknowledged.

    A worker stopped between storing a message and recording its acknowledgement leaves it
    "received". If the acknowledgement had already reached MESH, MESH no longer lists the message,
    so listing alone would leave it "received" for ever. It is stored, so acknowledging it (again)
    is always right; MESH answers an acknowledgement of an acknowledged message with success.
    Only messages stored before this poll began: those of this poll were handled by it.
    """
    return list(
        Message.objects.inbound()
        .filter(mailbox=mailbox, status=Status.RECEIVED, created_at__lt=before)
        .order_by("created_at")
        .values_list("mesh_message_id", flat=True)[:STRANDED_PER_POLL]
    )


def _check_claim(heartbeat: ClaimHeartbeat | None) -> None:
    if heartbeat is not None and heartbeat.lost:
        raise PollClaimLost(
            "Stopped: this poll lost its claim on the mailbox (another worker is polling "
            "it now); the messages not yet received stay in MESH for that poll"
        )


@dataclass
class _Job:
    """One MESH request for one message: its download, or its acknowledgement once stored."""

    mesh_id: str
    failure: object  # the message's open InboundFailure, if any
    limits: meshcore.DownloadLimits | None = None  # a download
    message: Message | None = None  # an acknowledgement: the stored message
    info: object = None  # a download's result: MESH's headers...
    payload: payloads.StoredPayload | None = None  # ...and the stored file
    error: BaseException | None = None
    skipped: bool = False  # not started: the poll was stopping
    shared: bool = False  # a download limited to a share of the free disk, not all of it


class _Pipeline:
    """A poll's MESH requests, `width` at once, with every database write in the lister's thread.

    Up to `width` threads (started as requests are handed out), each with its own MESH
    connection, download messages (streamed into durable payload files) and acknowledge stored
    ones. The lister's thread hands out the ids and, as requests finish, stores each batch of
    downloads in one transaction (rows, counters, events and audit records sealed together),
    then hands out their acknowledgements, and records each batch of acknowledgements in one
    transaction. So a message is acknowledged only after its row is committed, a message's
    chunks are fetched in order by one thread, and one transaction covers many messages when
    many finish together (few commits a message, no writers contending for the database). At
    most four times `width` requests are handed out at once, whatever the backlog.

    A message that fails for a reason of its own is recorded (``quarantine``) and the rest go on.
    An error that is not about one message stops the hand-out: requests not yet started are
    skipped (left in MESH), those started finish (their downloads are stored, then acknowledged),
    and the error is raised when the poll ends. Running out of disk stops the hand-out the same
    way, with its error recorded and nothing raised.
    """

    def __init__(self, mailbox: Mailbox, width: int, result: PollResult):
        self.mailbox, self.result, self.width = mailbox, result, width
        self.todo: queue.Queue[_Job | None] = queue.Queue()
        self.done: queue.Queue[_Job] = queue.Queue()
        self.in_flight = 0
        # Requests handed out at once: `width` at work, the rest queued behind them.
        self.limit = 4 * width
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        # Downloads refused for their share of the disk only: tried again alone (receive_alone).
        self.alone: list[_Job] = []
        # A poll of an empty inbox (most polls) or of a few messages opens no more MESH
        # connections than it uses.
        self.threads = ThreadsOnDemand(self._work, f"poll-{mailbox.mailbox_id}", width)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop.set()  # what is not started yet stays in MESH
        try:
            self.finish()
        finally:
            self.stop.set()  # should finishing have failed, no download still queued starts
            self.threads.stop(self.todo)
        if exc_type is None and self.fatal is not None:
            raise self.fatal

    # --- the lister's thread ---------------------------------------------------------------

    def receive(
        self, mesh_id: str, failure, message: Message | None = None, *, alone: bool = False
    ) -> None:
        """Hand out one message: acknowledged if stored already (`message`), else downloaded
        within its share of the free disk (all of it when `alone`: nothing else downloads)."""
        while self.in_flight >= self.limit and not self.stopping:
            self._settle(wait=True)
        if self.stopping:
            return
        if message is not None:
            self._hand_out(_Job(mesh_id, failure, message=message))
            return
        room = disk_room()
        if room is not None and room <= 0:
            self.result.errors.append(
                "Not enough free disk space for payloads (less than the "
                f"{settings.MESH_PAYLOAD_DISK_RESERVE_BYTES:,} bytes kept in reserve): "
                "the rest of the inbox waits in MESH until space is freed"
            )
            self.stop.set()
            return
        shared = room is not None and self.width > 1 and not alone  # None: object storage
        share = max(1, room // self.width) if shared else room
        self._hand_out(_Job(mesh_id, failure, limits=download_limits(share), shared=shared))

    def finish(self) -> None:
        """Wait for every request handed out, storing and acknowledging as they finish."""
        while self.in_flight:
            self._settle(wait=True)

    def receive_alone(self) -> None:
        """Once every other request has finished (`finish`), download again, one at a time with
        the whole free disk, each message refused for its share of it only: a message larger
        than room / width but not than the room would otherwise be refused at every poll, then
        quarantined. (A refusal now is recorded: `alone` downloads are not shared.)"""
        for job in self.alone:
            if self.stopping:
                return  # it stays in MESH for the next poll
            self.receive(job.mesh_id, job.failure, alone=True)
            self.finish()

    def _hand_out(self, job: _Job) -> None:
        self.in_flight += 1
        self.todo.put(job)
        self.threads.grow(self.in_flight)

    def _settle(self, *, wait: bool) -> None:
        """Store and acknowledge what has finished; with `wait`, at least `width` requests (or
        all those handed out), so that each transaction takes a batch while the threads work
        through the requests queued behind."""
        finished = take_finished(self.done, at_least=min(self.width, self.in_flight) if wait else 0)
        self.in_flight -= len(finished)
        downloaded, acknowledged = [], []
        for job in finished:
            if job.skipped:
                continue
            if job.error is not None:
                self._failed(job, job.error)
            elif job.message is None:
                downloaded.append(job)
            else:
                acknowledged.append(job)
        if downloaded:
            for job in self._store(downloaded):  # stored: acknowledged even if stopping
                self._hand_out(_Job(job.mesh_id, job.failure, message=job.message))
        if acknowledged:
            self._record_acknowledged(acknowledged)

    def _store(self, jobs: list[_Job]) -> list[_Job]:
        """Store downloads in one transaction (one at a time if that fails); returns the stored."""
        try:
            with sealed_together():
                messages = _create_inbound_many(
                    self.mailbox, [(job.info, job.payload) for job in jobs]
                )
                for job, message in zip(jobs, messages, strict=True):
                    job.message = message
                MessageCount.add_many([job.message for job in jobs], MessageCount.Event.MOVED)
        except Exception:  # noqa: BLE001 - one at a time below, so that one message fails alone
            for job in jobs:
                job.message = None
        except BaseException:
            for job in jobs:
                payloads.delete_payload(job.payload.name)
            raise
        else:
            self._count_stored(jobs)
            return jobs
        stored = []
        for job in jobs:
            try:
                job.message, created = _store_one(self.mailbox, job.info, job.payload)
            except Exception as exc:  # noqa: BLE001 - that message's failure, or the poll's
                self._failed(job, exc)
                continue
            if created:
                self._count_stored([job])
            stored.append(job)
        return stored

    def _count_stored(self, jobs: list[_Job]) -> None:
        self.result.downloaded += len(jobs)
        self.result.reports += sum(1 for job in jobs if job.message.is_report)

    def _record_acknowledged(self, jobs: list[_Job]) -> None:
        """Record MESH's acknowledgement of stored messages, in one transaction."""
        messages = [job.message for job in jobs if job.message.status != Status.ACKNOWLEDGED]
        try:
            if messages:
                _mark_acknowledged(messages)
        except BaseException as exc:  # noqa: BLE001 - the database's trouble, not a message's
            # Still "received": the next poll acknowledges them again and records it.
            self._stop_with(exc)
            return
        self.result.acknowledged += len(jobs)
        for job in jobs:
            if job.failure is not None:
                quarantine.inbound_failure_received(failure=job.failure)

    def _failed(self, job: _Job, exc: BaseException) -> None:
        """Record one message's failure, or stop the poll for an error that is not about it."""
        if job.shared and _refused_for_disk(exc):
            self.alone.append(job)  # perhaps larger than its share, not than the room
            return
        try:
            _record_or_raise(self.mailbox, job.mesh_id, self.result, exc)
        except BaseException as fatal:  # noqa: BLE001 - raised when the poll ends
            self._stop_with(fatal)

    def _stop_with(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
        self.stop.set()

    # --- the request threads --------------------------------------------------------------

    def _work(self) -> None:
        ended = False
        try:
            with mesh_client(self.mailbox) as client:
                while (job := self.todo.get()) is not None:
                    self._run(client, job)
                ended = True
        except BaseException as exc:  # noqa: BLE001 - the client could not be opened or closed
            self._stop_with(exc)
            while not ended and (job := self.todo.get()) is not None:
                job.skipped = True  # keep answering, so the lister never waits on us
                self.done.put(job)
        finally:
            connection.close()

    def _run(self, client, job: _Job) -> None:
        try:
            if job.message is not None:
                client.acknowledge(job.mesh_id)
            elif self.stopping:
                job.skipped = True  # not started: it stays in MESH
            else:
                job.info, job.payload = _download(client, self.mailbox, job.mesh_id, job.limits)
        except BaseException as exc:  # noqa: BLE001 - handled in the lister's thread
            job.error = exc
            if _ends_poll(exc):
                self.stop.set()  # at once, so that this thread starts nothing more
        finally:
            self.done.put(job)


def _ends_poll(exc: BaseException) -> bool:
    """Whether an error met receiving one message is not about that message: it ends the poll."""
    if isinstance(exc, meshcore.MeshDeadlineExceeded):
        return False
    return isinstance(exc, (meshcore.MeshTransientError, *POLL_WIDE_ERRORS)) or not isinstance(
        exc, Exception
    )


def _record_or_raise(mailbox: Mailbox, mesh_id: str, result: PollResult, exc: BaseException):
    """Record a message's own failure and carry on; raise an error that is not about it."""
    if isinstance(exc, meshcore.MeshDeadlineExceeded):
        _record_failure(mailbox, mesh_id, result, str(exc))  # too slow: this message's failure
    elif isinstance(exc, meshcore.MeshRateLimitedError):
        raise exc  # MESH asks us to slow down: the poll stops, no message is blamed
    elif isinstance(exc, meshcore.MeshTransientError):
        # MESH failing (5xx, connection): probably MESH, maybe this one message. The poll stops,
        # and the message is backed off (never quarantined for it), so a message MESH cannot
        # serve does not stop every later poll from reaching the ones behind it.
        quarantine.inbound_failure_record(
            mailbox=mailbox, mesh_id=mesh_id, reason=str(exc), may_quarantine=False
        )
        raise exc
    elif isinstance(exc, POLL_WIDE_ERRORS) or not isinstance(exc, Exception):
        raise exc  # credentials or TLS refused, disk or database gone: not this message's fault
    elif isinstance(exc, meshcore.MeshPayloadTooLarge):
        by_disk = _refused_for_disk(exc)
        if by_disk:
            reason = (
                f"not enough free disk space for it (it is more than {exc.limit:,} bytes, the room "
                "left above the reserve): left in MESH for a later poll"
            )
        else:
            reason = f"{exc} (limit {exc.limit_name} = {exc.limit:,})"
        _record_failure(mailbox, mesh_id, result, reason, quarantine_now=not by_disk)
    else:  # one bad message must never stop the others
        log.warning("Receiving %s for %s failed", mesh_id, mailbox.mailbox_id, exc_info=exc)
        text = (
            str(exc)
            if isinstance(exc, meshcore.MeshError | ChecksumMismatch)
            else (f"NeoMesh could not store it ({type(exc).__name__}: {str(exc)[:500]})")
        )
        _record_failure(mailbox, mesh_id, result, text)


def _refused_for_disk(exc: BaseException) -> bool:
    """Whether a download was refused for the free disk space, not for the configured limits."""
    return (
        isinstance(exc, meshcore.MeshPayloadTooLarge)
        and exc.limit_name == "max_message_bytes"
        and exc.limit < settings.MESH_MAX_MESSAGE_BYTES
    )


def _record_failure(
    mailbox: Mailbox, mesh_id: str, result: PollResult, reason: str, quarantine_now: bool = False
) -> None:
    log.warning("Receiving %s for %s failed: %s", mesh_id, mailbox.mailbox_id, reason)
    failure = quarantine.inbound_failure_record(
        mailbox=mailbox, mesh_id=mesh_id, reason=reason, quarantine=quarantine_now
    )
    state = (
        "quarantined for a person"
        if failure.status == failure.State.QUARANTINED
        else f"will try again after {failure.next_attempt_at:%H:%M} UTC"
    )
    result.errors.append(f"{quarantine.failure_key(mesh_id)}: {reason} ({state})")


def disk_room() -> int | None:
    """Bytes free for payloads above the configured reserve (<= 0: no download may start);
    None when payloads go to object storage (streamed, nothing kept on a local disk)."""
    root = getattr(payloads.store(), "root", None)
    if root is None:
        return None
    path = Path(root)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free - settings.MESH_PAYLOAD_DISK_RESERVE_BYTES


def download_limits(room: int | None = None) -> meshcore.DownloadLimits:
    """The configured limits on a received message; never more than ``room`` bytes of disk."""
    largest = settings.MESH_MAX_MESSAGE_BYTES
    return meshcore.DownloadLimits(
        max_message_bytes=max(1, min(largest, room)) if room is not None else largest,
        max_chunk_bytes=settings.MESH_MAX_CHUNK_BYTES,
        max_expansion_ratio=settings.MESH_MAX_EXPANSION_RATIO,
        max_chunks=settings.MESH_MAX_CHUNKS,
    )


def _download(client, mailbox: Mailbox, mesh_id: str, limits: meshcore.DownloadLimits | None):
    """Download one message into a durable payload file (no row yet): (MESH's headers, file)."""
    with payloads.durable_writer("in") as (writer, stored):
        info = client.download(mesh_id, writer, limits=limits or download_limits())
        # Checked before the file is kept: a mismatch leaves nothing stored and nothing acknowledged.
        _verify_checksum(mailbox, mesh_id, info.checksum, writer.sha256)
    return info, stored[0]


def _store_one(mailbox: Mailbox, info, payload: payloads.StoredPayload) -> tuple[Message, bool]:
    """Store one downloaded message in its own transaction: (its row, whether this made it)."""
    try:
        with sealed_together():
            message = _create_inbound(mailbox, info, payload)
            MessageCount.add(message, MessageCount.Event.MOVED)
            return message, True
    except IntegrityError:
        # Another worker stored it between our check and our insert: keep theirs, drop our copy.
        payloads.delete_payload(payload.name)
        existing = Message.objects.filter(
            mailbox=mailbox, direction=Direction.INBOUND, mesh_message_id=info.message_id
        ).first()
        if existing is None:
            raise  # not a race: the row itself was refused
        return existing, False
    except BaseException:
        payloads.delete_payload(payload.name)  # a payload is never kept without its message
        raise


def _mark_acknowledged(messages: list[Message]) -> None:
    """Messages MESH has acknowledged: status, timeline, notices and audit, one transaction."""
    now = timezone.now()
    with sealed_together():
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(
            status=Status.ACKNOWLEDGED, acknowledged_at=now
        )
        MessageEvent.objects.bulk_create(
            MessageEvent(message=m, kind=Kind.ACKNOWLEDGED, detail="Acknowledged to MESH")
            for m in messages
        )
        for message in messages:
            message.status, message.acknowledged_at = Status.ACKNOWLEDGED, now
            record(actor=Actor.worker(), action="message.acknowledged", obj=message)
        notices.inbound_acknowledged_many(messages)


def _verify_checksum(mailbox: Mailbox, mesh_id: str, checksum: str | None, actual: str) -> None:
    match = SHA256_CHECKSUM_RE.match(checksum or "")
    if match is None or match.group(1).lower() == actual:
        return
    text = (
        f"the payload does not match its checksum (sender said sha256 {match.group(1).lower()}, "
        f"received sha256 {actual}): not stored and not acknowledged, it stays in MESH to be "
        "fetched again by the next poll; if it keeps failing, ask the sender to check and resend"
    )
    record(
        actor=Actor.worker(),
        action="message.checksum_mismatch",
        obj=mailbox,
        detail=f"{mesh_id}: {text}",
    )
    raise ChecksumMismatch(text)


# The Message fields filled from MESH's headers, and the header each comes from (for the note).
HEADER_FIELDS = {
    "mesh_message_id": "mex-MessageID",
    "local_id": "mex-LocalID",
    "workflow_id": "mex-WorkflowID",
    "sender": "mex-From",
    "recipient": "mex-To",
    "subject": "mex-Subject",
    "filename": "mex-FileName",
    "content_type": "mex-Content-Type",
    "checksum": "mex-Content-Checksum",
    "partner_id": "mex-PartnerID",
    "mesh_status_code": "mex-StatusCode",
    "mesh_status_event": "mex-StatusEvent",
    "mesh_status_description": "mex-StatusDescription",
    "linked_mesh_message_id": "mex-LinkedMsgID",
}
MAX_TEXT_HEADER = 4000  # a TextField has no max_length; MESH's headers are far shorter


def bounded_headers(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each header value made to fit its column: control characters (which PostgreSQL may refuse)
    replaced, an over-long value cut. Returns the values and a note for each change."""
    fields, notes = {}, []
    for name, value in values.items():
        text = _UNPRINTABLE.sub("?", value or "")
        limit = Message._meta.get_field(name).max_length or MAX_TEXT_HEADER
        header = HEADER_FIELDS[name]
        if text != (value or ""):
            notes.append(f"{header} held control characters, shown as '?'")
        if len(text) > limit:
            notes.append(
                f"{header} was {len(text):,} characters long; only its first {limit} are kept"
            )
            text = text[:limit]
        fields[name] = text
    return fields, notes


def _create_inbound(mailbox: Mailbox, info, payload: payloads.StoredPayload) -> Message:
    """One received message's row, timeline, audit record and notices (counted by the caller)."""
    return _create_inbound_many(mailbox, [(info, payload)])[0]


def _create_inbound_many(mailbox: Mailbox, received: list[tuple]) -> list[Message]:
    """Received messages' rows, timelines, audit records and notices, a few statements for all
    (inside the caller's transaction; counted by the caller)."""
    built = [_inbound_row(mailbox, info, payload) for info, payload in received]
    messages = Message.objects.bulk_create([message for message, _ in built])
    MessageWord.index(messages)
    timeline = []
    for message, notes in built:
        timeline.append(
            MessageEvent(
                message=message,
                kind=Kind.DOWNLOADED,
                detail=(
                    f"Downloaded {message.size_bytes} bytes (sha256 {message.payload_sha256[:16]}…)"
                ),
            )
        )
        timeline += [
            MessageEvent(message=message, kind=Kind.NOTE, detail=f"Received as sent, except: {n}.")
            for n in notes
        ]
    MessageEvent.objects.bulk_create(timeline)
    for message in messages:
        record(
            actor=Actor.worker(),
            action="message.downloaded",
            obj=message,
            detail=f"{message.size_bytes} bytes, sha256 {message.payload_sha256}",
        )
    for message in messages:
        if message.is_report:
            _link_report(message)
        else:
            acks.business_ack_link(message)
            notices.received(message)
    return messages


def _inbound_row(mailbox: Mailbox, info, payload: payloads.StoredPayload):
    """The unsaved row of a received message from MESH's headers, and the notes on what had to
    be changed to fit it."""
    is_report = info.message_type == MessageType.REPORT
    headers, notes = bounded_headers(
        {
            "mesh_message_id": info.message_id,
            "local_id": info.local_id or "",
            "workflow_id": info.workflow_id or "",
            "sender": info.sender or "",
            "recipient": info.recipient or mailbox.mailbox_id,
            "subject": info.subject or "",
            "filename": info.filename or "",
            "content_type": info.content_type or "",
            "checksum": info.checksum or "",
            "partner_id": getattr(info, "partner_id", None) or "",
            "mesh_status_code": (info.status_code or "") if is_report else "",
            "mesh_status_event": (info.status_event or "") if is_report else "",
            "mesh_status_description": (info.status_description or "") if is_report else "",
            "linked_mesh_message_id": (info.linked_message_id or "") if is_report else "",
        }
    )
    message = Message(
        mailbox=mailbox,
        direction=Direction.INBOUND,
        message_type=MessageType.REPORT if is_report else MessageType.DATA,
        compressed=bool(info.compressed),
        encrypted=bool(info.encrypted),
        size_bytes=payload.size,
        payload=payload.name,
        payload_sha256=payload.sha256,
        chunks_total=info.total_chunks or 0,
        chunks_done=info.total_chunks or 0,
        status=Status.RECEIVED,
        received_at=timezone.now(),
        **headers,
    )
    return message, notes


def _link_report(report: Message) -> None:
    """Point the report at the outbound message it concerns, and fail that message."""
    reason = explain(report.mesh_status_code, report.mesh_status_description)
    report.failure_reason = reason
    original = Message.objects.filter(
        mailbox=report.mailbox,
        direction=Direction.OUTBOUND,
        mesh_message_id=report.linked_mesh_message_id,
    ).first()
    notices.ndr(report, original, reason)
    if original is None:
        report.save(update_fields=["failure_reason"])
        return
    report.linked_message = original
    report.save(update_fields=["failure_reason", "linked_message"])
    fields = {
        "status": Status.FAILED,
        "failure_reason": reason,
        "mesh_status_code": report.mesh_status_code,
        "mesh_status_event": report.mesh_status_event,
        "mesh_status_description": report.mesh_status_description,
    }
    linked = Message.objects.filter(pk=original.pk)
    # The recipient's acknowledgement is MESH's last word on delivery: a report never undoes it.
    if linked.exclude(status__in=[Status.ACKNOWLEDGED, Status.FAILED]).update(**fields):
        MessageCount.add(original, MessageCount.Event.FAILED, report.mesh_status_code)
    elif not linked.filter(status=Status.FAILED).update(**fields):  # failed already: counted once
        original.add_event(
            Kind.REPORT,
            f"Non-delivery report {report.mesh_message_id} after the recipient acknowledged the "
            f"message: {reason}. Kept as acknowledged.",
        )
        return
    original.add_event(Kind.REPORT, f"Non-delivery report {report.mesh_message_id}: {reason}")
    record(
        actor=Actor.worker(),
        action="message.failed",
        obj=original,
        detail=f"Non-delivery report: {reason}",
    )
