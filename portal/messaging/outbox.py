"""The durable outbox: one worker at a time sends a queued message, resuming after any crash.

A message is claimed with a conditional update (`queued -> sending`, proceed only if one row
changed). While it is being sent a heartbeat keeps the claim fresh; a claim whose heartbeat stops
(the worker died) is released by `outbox_sweep`, and the next worker resumes from the chunk after
the last one saved. The MESH message id is saved after chunk 1 and progress after every chunk (a
message sent in one request: with its acceptance).

The first `POST /outbox` is the one step that cannot simply be retried: MESH has no idempotency
key, so if its outcome is unknown (the worker died during it, or the connection dropped after the
request went out) we reconcile by tracking the message's local id before sending again. Every
outbound message gets a local id for this reason (`neomesh-<uuid>` when the sender gives none).

Every attempt ends in a recorded outcome, whatever goes wrong: MESH errors by their kind, anything
else (a missing payload file, a disk or database error, a secret that cannot be decrypted) is
recorded and retried with backoff, and no message is attempted more than MAX_ATTEMPTS times, also
when its workers keep dying (the sweep fails it instead of releasing it again). Failures that need a
person are also recorded on the mailbox, so the dashboard flags it.

The claim lease and meshcore's retries: see portal/lib/claims.py.

Several at once per mailbox (`OUTBOX_CONCURRENCY`, default 8): the task that sends one message
(`outbox_send_with_due`) then sends the mailbox's other due messages, that many at once: its thread
claims them a batch at a time (`claim_batch`) and records the acceptances that finish together in
one transaction; sending threads upload each under its own claim and heartbeat, so each message is
still sent by one worker, its chunks in order, and keep their MESH connection open from one
message to the next. A message sent whole (one request) records its upload with its acceptance,
in one transaction. Tasks queued for messages already sent this way find them claimed and end at
once. One task a mailbox drains it: a task that finds another sending the mailbox's messages sends
its own message and leaves the rest to that one, so a burst keeps one worker (and
`OUTBOX_CONCURRENCY` connections to MESH) a mailbox, not every worker: polls and other tasks still
find a worker free.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import re
import time
import traceback
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

import meshcore
from portal.audit.services import sealed_together
from portal.lib import payloads
from portal.lib.claims import ClaimHeartbeat
from portal.lib.workers import ThreadsOnDemand, take_finished, worker_name
from portal.mailboxes.services import MailboxNotReady, mesh_client, record_error

from . import notices
from .enqueue import enqueue_send
from .mesh_codes import explain
from .models import Direction, Message, MessageCount, MessageEvent, Status, next_track_at

log = logging.getLogger(__name__)

# A claim not refreshed for this long belongs to a dead worker.
CLAIM_LEASE = timedelta(seconds=settings.OUTBOX_CLAIM_LEASE_SECONDS)
HEARTBEAT_SECONDS = max(1.0, CLAIM_LEASE.total_seconds() / 4)
MAX_ATTEMPTS = 12
Kind = MessageEvent.Kind
# An Authorization header value, should one ever appear in an error's text.
_TOKEN_RE = re.compile(r"NHSMESH\s+\S+")


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff between outbox attempts: 30 s, 1 min, 2 min ... capped at 1 hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


class ClaimLost(Exception):
    """Another worker now owns the message (our heartbeat stopped for longer than the lease)."""


class PayloadMissing(Exception):
    """The message's payload file is not in storage: no retry can bring it back."""


def _refresh_claim(message_id: int, worker: str, **fields) -> bool:
    return bool(
        Message.objects.filter(pk=message_id, status=Status.SENDING, claimed_by=worker).update(
            claimed_at=timezone.now(), **fields
        )
    )


def claim(message_id: int, worker: str) -> Message | None:
    """Claim one message if it is queued and due (one commit for the claim and its event)."""
    claimed = claim_batch([message_id], worker)
    return claimed[0] if claimed else None


def message_send(
    *, message_id: int, worker: str | None = None, clients: _Clients | None = None
) -> str:
    """Send one queued message if this worker can claim it. Returns the resulting status.

    `clients` keeps MESH connections open from one message to the next (a thread sending many).
    """
    worker = worker or worker_name()
    message = claim(message_id, worker)
    if message is None:
        return "not-claimed"
    refresh = functools.partial(_refresh_claim, message.pk, worker)
    with ClaimHeartbeat(refresh, HEARTBEAT_SECONDS) as heartbeat:
        return _send_claimed(message, worker, heartbeat, clients)


class _Clients:
    """One thread's open MESH client per mailbox, reused for message after message (one TLS
    session, kept alive), closed when the thread is done."""

    def __init__(self):
        self.stack = contextlib.ExitStack()
        self.open: dict[int, meshcore.MeshClient] = {}

    @contextlib.contextmanager
    def client(self, mailbox) -> Iterator[meshcore.MeshClient]:
        if mailbox.pk not in self.open:
            self.open[mailbox.pk] = self.stack.enter_context(mesh_client(mailbox))
        yield self.open[mailbox.pk]

    def __enter__(self) -> _Clients:
        return self

    def __exit__(self, *exc) -> None:
        self.open.clear()
        self.stack.close()


def outbox_send_with_due(*, message_id: int, budget_seconds: float = 60.0) -> dict[str, int]:
    """Send this message, then the same mailbox's other due messages, `OUTBOX_CONCURRENCY` at once.

    Stops when the mailbox has nothing due or after `budget_seconds` (the next sweep carries on).
    This thread claims the due messages a batch at a time (one transaction; a message claimed by
    another worker is skipped), hands them to up to `OUTBOX_CONCURRENCY` sending threads (started
    as messages are handed out; each with its own MESH connection, kept open, and a heartbeat per
    message), and records the acceptances of those that finish together in one transaction. Each
    message has its own claim, so running this on several workers at once, or beside single
    sends, never sends a message twice.

    If another task is sending this mailbox's messages already (a live claim on one of them), this
    one sends only its own message: the other takes the rest. Without that, a burst of queued
    messages had every worker draining the same mailbox (each with `OUTBOX_CONCURRENCY`
    connections to MESH) until it was empty, and no poll could start meanwhile.
    """
    width = max(1, settings.OUTBOX_CONCURRENCY)
    mailbox_id = Message.objects.filter(pk=message_id).values_list("mailbox_id", flat=True).first()
    if width == 1 or mailbox_id is None:
        return {"sent": int(message_send(message_id=message_id) != "not-claimed")}
    deadline = time.monotonic() + budget_seconds
    drains = not _sending_elsewhere(mailbox_id)
    with _Senders(width, worker_name()) as senders:
        batch = [message_id]
        # What is claimed (this task's, or another's) is not sendable, so the query needs no list
        # of the ids seen: with one, a task sending thousands sent each query thousands of ids.
        # Due as of the task's start: a message whose attempt fails here (backed off from then
        # on) is the sweep's again, not retried by this task.
        due = Message.objects.sendable().filter(mailbox_id=mailbox_id).order_by("pk")
        while True:
            if batch:
                senders.hand_out(claim_batch(batch, senders.worker))
            if not senders.in_flight:
                break
            senders.settle()
            batch = []
            room = senders.limit - senders.in_flight
            if drains and room >= width and time.monotonic() < deadline:
                batch = list(due.values_list("pk", flat=True)[:room])
        return {"sent": senders.sent}


def _sending_elsewhere(mailbox_id: int) -> bool:
    """Whether a task is sending this mailbox's messages now: one of them has a live claim."""
    return Message.objects.filter(
        mailbox_id=mailbox_id,
        direction=Direction.OUTBOUND,
        status=Status.SENDING,
        claimed_at__gte=timezone.now() - CLAIM_LEASE,
    ).exists()


@transaction.atomic  # one commit for the claims and their events
def claim_batch(message_ids: list[int], worker: str) -> list[Message]:
    """Claim those of these messages that are queued and due, in one transaction."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    candidates = Message.objects.filter(
        pk__in=message_ids, direction=Direction.OUTBOUND, status=Status.QUEUED
    ).filter(due)
    if connection.features.has_select_for_update_skip_locked:
        # Rows another worker is claiming right now are theirs (SQLite claims one writer at once).
        candidates = candidates.select_for_update(skip_locked=True)
    mine = list(candidates.values_list("pk", flat=True))
    if not mine:
        return []
    Message.objects.filter(pk__in=mine).update(
        status=Status.SENDING,
        claimed_at=now,
        claimed_by=worker,
        attempts=F("attempts") + 1,
        # Fixed at the first claim: a resume must cut the payload into the same chunks, even if
        # MESH_CHUNK_SIZE changed in between. Unset (the default), meshcore decides from the
        # message's max_request_bytes, fixed when it was queued.
        chunk_size=Coalesce(
            F("chunk_size"),
            Value(settings.MESH_CHUNK_SIZE),
            output_field=models.PositiveIntegerField(),
        ),
    )
    # The mailbox is loaded later, inside the send's error handling: its secrets may not decrypt.
    messages = list(Message.objects.filter(pk__in=mine).order_by("pk"))
    MessageEvent.objects.bulk_create(
        MessageEvent(message=m, kind=Kind.CLAIMED, detail=f"Attempt {m.attempts} by {worker}")
        for m in messages
    )
    return messages


class _Senders:
    """The sending threads of `outbox_send_with_due`; database writes stay in the caller's thread
    except a failed attempt's record (rare), which the sending thread writes as `message_send`."""

    def __init__(self, width: int, worker: str):
        self.width, self.worker = width, worker
        self.limit = 4 * width  # messages claimed at once: `width` sending, the rest queued
        self.todo: queue.Queue[Message | None] = queue.Queue()
        self.done: queue.Queue[tuple[Message, str | None]] = queue.Queue()
        self.in_flight = self.sent = 0
        self.threads = ThreadsOnDemand(self._work, "send", width)

    def __enter__(self) -> _Senders:
        return self

    def __exit__(self, *exc) -> None:
        try:
            while self.in_flight:  # claimed messages always get their recorded outcome
                self.settle()
        finally:
            self.threads.stop(self.todo)

    def hand_out(self, messages: list[Message]) -> None:
        for message in messages:
            self.in_flight += 1
            message.handed_out_at = time.monotonic()
            self.todo.put(message)
        self.threads.grow(self.in_flight)

    def settle(self) -> None:
        """Wait for at least `width` sends (or all), then record those MESH accepted together."""
        finished = take_finished(self.done, at_least=min(self.width, self.in_flight))
        self.in_flight -= len(finished)
        self.sent += sum(1 for _, status in finished if status != "claim-lost")
        uploaded = [message for message, status in finished if status is None]
        if uploaded:
            _accepted_many(
                [(m, f"MESH message id {m.mesh_message_id}") for m in uploaded], self.worker
            )

    def _work(self) -> None:
        try:
            with _Clients() as clients:
                while (message := self.todo.get()) is not None:
                    status = "failed"
                    try:
                        refresh = functools.partial(_refresh_claim, message.pk, self.worker)
                        waited = time.monotonic() - message.handed_out_at
                        if waited > HEARTBEAT_SECONDS and not refresh():
                            # Queued here past a beat: the claim may have been released meanwhile.
                            status = "claim-lost"
                            continue
                        with ClaimHeartbeat(refresh, HEARTBEAT_SECONDS) as heartbeat:
                            status = _attempt(message, self.worker, heartbeat, clients)
                    except Exception:  # noqa: BLE001 - even its failure's record failed (database)
                        # Left claimed: the sweep releases it after the lease, and the next
                        # attempt asks MESH by local id first. The thread goes on with the rest.
                        log.exception("Sending message %s failed unrecorded", message.pk)
                    finally:
                        self.done.put((message, status))
        finally:
            connection.close()


def _send_claimed(
    message: Message,
    worker: str,
    heartbeat: ClaimHeartbeat | None = None,
    clients: _Clients | None = None,
) -> str:
    status = _attempt(message, worker, heartbeat, clients)
    if status is not None:
        return status
    return _accepted(message, worker, f"MESH message id {message.mesh_message_id}")


def _attempt(
    message: Message,
    worker: str,
    heartbeat: ClaimHeartbeat | None = None,
    clients: _Clients | None = None,
) -> str | None:
    """Upload a claimed message: None when MESH has it all (to be recorded as accepted), else
    the status its attempt ended in, recorded (failed, retried later, uncertain, claim lost)."""
    from portal.onboarding.gate import transfer_blocked_reason

    try:
        blocked = transfer_blocked_reason(message.mailbox)
        if blocked:
            return _retry_later(
                message,
                worker,
                f"Not sent: {blocked}",
                delay=timedelta(minutes=15),
                count_attempt=False,
            )
        opened = clients.client if clients is not None else mesh_client
        with opened(message.mailbox) as client:
            if (
                message.chunks_done == 0
                and message.mesh_message_id is None
                and message.attempts > 1
            ):
                if _reconcile_first_chunk(client, message, worker):
                    return message.status
            if heartbeat is not None and heartbeat.lost:
                raise ClaimLost()
            _upload(client, message, worker)
    except ClaimLost:
        log.warning("Lost the claim on message %s; another worker has it.", message.pk)
        return "claim-lost"
    except PayloadMissing as exc:
        return _fail(message, worker, str(exc))
    except payloads.PayloadTampered as exc:
        return _fail(
            message,
            worker,
            f"The stored file to send failed its integrity check and was not sent ({exc}). "
            "Queue the file again as a new message, and tell your security team.",
        )
    except MailboxNotReady as exc:
        return _fail(message, worker, str(exc))
    except meshcore.MeshError as exc:
        return _handle_error(message, worker, exc)
    except Exception as exc:  # noqa: BLE001 - every attempt must end with a recorded outcome
        return _handle_unexpected(message, worker, exc)
    return None


def _open_payload(message: Message):
    """The file to send, or PayloadMissing: opened after any reconciling, which needs no file."""
    name = (message.payload.name if message.payload else "") or "none recorded"
    try:
        if message.payload:
            return payloads.open_payload(message.payload.name)
    except FileNotFoundError:
        pass
    raise PayloadMissing(
        f"The file to send is missing from payload storage ({name}), so this message can never be "
        "sent. Queue the file again as a new message."
    )


def _upload(client, message: Message, worker: str) -> None:
    def on_progress(chunk: int, total: int, mesh_message_id: str) -> None:
        fields = {"chunks_done": chunk, "chunks_total": total, "mesh_message_id": mesh_message_id}
        if total == 1:
            # Sent whole: recorded with its acceptance, in one transaction (`_accepted`). Should
            # the worker stop before that, the next attempt finds it in MESH by its local id.
            message.chunk_uploaded = (chunk, total)
            for name, value in fields.items():
                setattr(message, name, value)
            return
        with transaction.atomic():
            if not _refresh_claim(message.pk, worker, **fields):
                raise ClaimLost()
            message.add_event(Kind.CHUNK_SENT, f"Chunk {chunk} of {total} uploaded", chunk=chunk)
        for name, value in fields.items():
            setattr(message, name, value)

    resume = None
    if message.mesh_message_id and message.chunks_done:
        # With the total when known: meshcore checks it against the layout it would cut now.
        resume = (
            (message.mesh_message_id, message.chunks_done, message.chunks_total)
            if (message.chunks_total)
            else (message.mesh_message_id, message.chunks_done)
        )
    with _open_payload(message) as source:
        mesh_id = client.send(
            message.recipient,
            message.workflow_id,
            source,
            filename=message.filename or None,
            local_id=message.local_id or None,
            subject=message.subject or None,
            content_type=message.content_type or None,
            checksum=message.checksum or None,
            compress=True,
            encrypted=message.encrypted or None,
            content_compressed=message.compressed or None,
            # Saved at the first claim (see claim()), so every attempt cuts the same chunks.
            chunk_size=message.chunk_size or None,
            on_progress=on_progress,
            resume_from=resume,
            max_request_bytes=message.max_request_bytes or None,
            allow_chunking=message.chunking_allowed,
            demographic=message.demographic,
        )
    message.mesh_message_id = mesh_id


def _reconcile_first_chunk(client, message: Message, worker: str) -> bool:
    """A previous attempt may have sent chunk 1 without recording it: ask MESH by local id.

    Returns True when the message's outcome is settled here (accepted or uncertain).
    """
    try:
        found = client.track_by_local_id(message.local_id)
    except meshcore.MeshNotFoundError:
        return False  # MESH never saw it: sending now cannot duplicate it.
    except meshcore.MeshError as exc:
        _uncertain(message, worker, f"Could not check MESH for an earlier upload: {exc}")
        return True
    message.mesh_message_id = found.message_id
    Message.objects.filter(pk=message.pk).update(mesh_message_id=found.message_id)
    if found.status == "uploading":
        # Chunk 1 arrived; carry on from chunk 2.
        message.chunks_done = 1
        Message.objects.filter(pk=message.pk).update(chunks_done=1)
        message.add_event(
            Kind.TRACKED, "An earlier attempt uploaded chunk 1; resuming from chunk 2."
        )
        return False
    _accepted(message, worker, f"An earlier attempt had already delivered it ({found.status}).")
    return True


def _finish(message: Message, worker: str, status: str, **fields) -> bool:
    updated = Message.objects.filter(
        pk=message.pk, status=Status.SENDING, claimed_by=worker
    ).update(status=status, claimed_at=None, claimed_by="", **fields)
    message.status = status
    return bool(updated)


def _accepted(message: Message, worker: str, detail: str) -> str:
    _accepted_many([(message, detail)], worker)
    return Status.ACCEPTED


def _accepted_many(accepted: list[tuple[Message, str]], worker: str) -> None:
    """Record MESH's acceptance of messages this worker claimed, in one transaction."""
    now = timezone.now()
    events, counted = [], []
    with sealed_together():
        for message, detail in accepted:
            uploaded = getattr(message, "chunk_uploaded", None)  # a whole message's one upload
            chunks = {"chunks_done": F("chunks_total")}
            if uploaded is not None:
                chunks = {"chunks_done": uploaded[0], "chunks_total": uploaded[1]}
            if not _finish(
                message,
                worker,
                Status.ACCEPTED,
                accepted_at=now,
                last_error="",
                mesh_message_id=message.mesh_message_id,
                next_track_at=next_track_at(accepted_at=now, tracked=0),
                tracked_count=0,
                **chunks,
            ):
                continue
            if uploaded is not None:
                events.append(
                    MessageEvent(
                        message=message,
                        kind=Kind.CHUNK_SENT,
                        detail=f"Chunk {uploaded[0]} of {uploaded[1]} uploaded",
                        chunk=uploaded[0],
                    )
                )
            events.append(MessageEvent(message=message, kind=Kind.ACCEPTED, detail=detail))
            counted.append(message)
            _audit(message, "message.accepted", detail)
        MessageEvent.objects.bulk_create(events)
        MessageCount.add_many(counted, MessageCount.Event.MOVED)


def _fail(
    message: Message, worker: str, reason: str, error: meshcore.MeshError | None = None
) -> str:
    fields = {"failure_reason": reason, "last_error": str(error or reason)[:2000]}
    if error is not None:
        fields.update(
            mesh_status_code=error.code or "",
            mesh_status_event=error.event or "",
            mesh_status_description=error.description or "",
        )
    with transaction.atomic():
        finished = _finish(message, worker, Status.FAILED, **fields)
        if finished:
            message.add_event(Kind.FAILED, reason)
            MessageCount.add(message, MessageCount.Event.FAILED, error.code if error else "")
            _audit(message, "message.failed", reason)
            notices.send_failed(message, reason)
    if finished:
        _flag_mailbox(message, f"Send of message #{message.pk} failed: {reason}")
    return Status.FAILED


def _uncertain(message: Message, worker: str, reason: str) -> str:
    text = (
        f"{reason} MESH may already have this message: check its tracking (local id "
        f"{message.local_id}) before resending."
    )
    with transaction.atomic():
        finished = _finish(
            message, worker, Status.UNCERTAIN, failure_reason=text, last_error=reason[:2000]
        )
        if finished:
            message.add_event(Kind.UNCERTAIN, text)
            _audit(message, "message.uncertain", text)
            notices.send_uncertain(message, text)
    if finished:
        _flag_mailbox(message, f"Send of message #{message.pk} has an unknown outcome: {reason}")
    return Status.UNCERTAIN


def _retry_later(
    message: Message,
    worker: str,
    reason: str,
    *,
    delay: timedelta | None = None,
    flag_mailbox: bool = False,
    count_attempt: bool = True,
) -> str:
    """Back to the queue for a later attempt; `flag_mailbox` when a person should know now.

    `count_attempt=False` when nothing was tried (the mailbox is blocked): waiting for a person to
    open it must not use up the attempts a real MESH problem gets.
    """
    delay = delay or retry_delay(message.attempts)
    fields = {} if count_attempt else {"attempts": F("attempts") - 1}
    text = f"{reason}. Next attempt in {int(delay.total_seconds())} s."
    with transaction.atomic():
        finished = _finish(
            message,
            worker,
            Status.QUEUED,
            next_attempt_at=timezone.now() + delay,
            last_error=reason[:2000],
            **fields,
        )
        if finished:
            message.add_event(Kind.RETRY, text)
            # In the same transaction as the change it records, and only if this worker made it.
            _audit(message, "message.retry", text)
    if finished and flag_mailbox:
        _flag_mailbox(message, f"Send of message #{message.pk} will be retried: {reason}")
    return Status.QUEUED


def _flag_mailbox(message: Message, text: str) -> None:
    """The mailbox's last error, which the dashboard flags (by id: the mailbox may not load)."""
    record_error(message.mailbox_id, text)


def _handle_error(message: Message, worker: str, exc: meshcore.MeshError) -> str:
    if isinstance(exc, meshcore.MeshSendOutcomeUnknown):
        if message.attempts >= MAX_ATTEMPTS:
            return _uncertain(message, worker, f"Gave up after {message.attempts} attempts: {exc}.")
        # Chunk 1 may or may not have arrived: settle it by tracking on the next attempt.
        return _retry_later(message, worker, f"Outcome of the first upload unknown: {exc}")
    if exc.retryable:
        if message.attempts >= MAX_ATTEMPTS:
            return _fail(message, worker, f"Gave up after {message.attempts} attempts: {exc}", exc)
        return _retry_later(message, worker, f"Temporary MESH problem: {exc}")
    if isinstance(exc, meshcore.MeshValidationError) and exc.status is None:
        # Refused by meshcore before any HTTP: MESH never saw it.
        reason = f"NeoMesh could not send it: {exc.description or exc}. Correct it and send again."
        return _fail(message, worker, reason, exc)
    return _fail(message, worker, explain(exc.code, exc.description, http_status=exc.status), exc)


def _handle_unexpected(message: Message, worker: str, exc: Exception) -> str:
    """Not MESH's doing: a disk, database or configuration problem. Retried, then failed."""
    text = _describe(exc, message)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename}:{frame.lineno}" if frame else ""
    # No traceback: its text would repeat the error unredacted. Type, text and place suffice.
    log.error(
        "Sending message %s failed on attempt %s%s: %s", message.pk, message.attempts, where, text
    )
    reason = f"NeoMesh could not send it ({text})"
    if message.attempts >= MAX_ATTEMPTS:
        return _fail(message, worker, f"Gave up after {message.attempts} attempts: {reason}.")
    return _retry_later(message, worker, reason, flag_mailbox=True)


def _describe(exc: Exception, message: Message) -> str:
    """The error's type and text, with anything secret taken out."""
    text = _TOKEN_RE.sub("NHSMESH [redacted]", f"{type(exc).__name__}: {exc}")
    if Message.mailbox.is_cached(message):
        for secret in (message.mailbox.password, message.mailbox.shared_key):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
    return text[:500]


def _audit(message: Message, action: str, detail: str) -> None:
    from portal.audit.services import Actor, record

    record(actor=Actor.worker(), action=action, obj=message, detail=detail)


def outbox_sweep(*, now=None) -> dict[str, int]:
    """Release claims of dead workers and list the messages due to be sent.

    Returns counts and enqueues due messages; safe to run on every worker at once.
    """
    now = now or timezone.now()
    stale = Message.objects.filter(
        direction=Direction.OUTBOUND, status=Status.SENDING, claimed_at__lt=now - CLAIM_LEASE
    )
    released = given_up = 0
    for message in stale:
        if message.attempts >= MAX_ATTEMPTS:
            given_up += _give_up_abandoned(message)
            continue
        with transaction.atomic():
            if Message.objects.filter(
                pk=message.pk, status=Status.SENDING, claimed_by=message.claimed_by
            ).update(status=Status.QUEUED, claimed_at=None, claimed_by="", next_attempt_at=now):
                released += 1
                _audit(message, "message.claim_released", f"worker {message.claimed_by} stopped")
                message.add_event(
                    Kind.RETRY,
                    f"The worker {message.claimed_by} stopped; resuming after chunk "
                    f"{message.chunks_done}.",
                )
    due = list(Message.objects.sendable(now).values_list("pk", "mailbox_id")[:500])
    if settings.OUTBOX_CONCURRENCY > 1:
        # One task a mailbox: it sends the mailbox's other due messages too.
        first = {}
        for pk, mailbox_id in due:
            first.setdefault(mailbox_id, (pk, mailbox_id))
        due = list(first.values())
    for pk, _ in due:
        enqueue_send(pk)
    return {"released": released, "given_up": given_up, "enqueued": len(due)}


def _give_up_abandoned(message: Message) -> int:
    """A message whose every worker died (or hung) MAX_ATTEMPTS times is not tried again.

    Failed when MESH certainly lacks part of it; uncertain when the first upload or the last chunk
    may have landed (then only tracking can tell).
    """
    reason = (
        f"Gave up after {message.attempts} attempts: the worker {message.claimed_by} stopped during "
        "the last one."
    )
    if message.last_error:
        reason += f" The last error was: {message.last_error[:500]}"
    partial = message.mesh_message_id and message.chunks_done < message.chunks_total
    status, kind = (Status.FAILED, Kind.FAILED) if partial else (Status.UNCERTAIN, Kind.UNCERTAIN)
    if status == Status.UNCERTAIN:
        reason += (
            f" MESH may have it: check its tracking (local id {message.local_id}) before resending."
        )
    with transaction.atomic():
        if not Message.objects.filter(
            pk=message.pk, status=Status.SENDING, claimed_by=message.claimed_by
        ).update(status=status, claimed_at=None, claimed_by="", failure_reason=reason):
            return 0
        message.add_event(kind, reason)
        if status == Status.FAILED:
            MessageCount.add(message, MessageCount.Event.FAILED)
            notices.send_failed(message, reason)
        else:
            notices.send_uncertain(message, reason)
        _audit(message, f"message.{status}", reason)
    _flag_mailbox(message, f"Send of message #{message.pk} stopped: {reason}")
    return 1
