"""What every scenario works with: the run's two MESH clients, the step it records into, helpers.

A scenario is a function ``(ctx, step) -> str``: it returns the reason it passed, raises
``ScenarioFailed`` (or lets a ``meshcore.MeshError`` escape) when it fails, and ``NotApplicable``
when the environment cannot run it. Everything it sends is registered with the context so that
whatever a failed scenario leaves behind is acknowledged at the end of the run.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

import meshcore

if TYPE_CHECKING:
    from portal.mailboxes.models import Mailbox

    from ..models import ConformanceRun, ScenarioResult
    from ..recorder import Recorder


class ScenarioFailed(Exception):
    """The environment or the client did not behave as the scenario requires; the text says how."""


class NotApplicable(Exception):
    """The scenario cannot run in this environment; the text says why and what to do instead."""


class RunStopped(Exception):
    """The whole run must stop now (it lost a claim it needs); the text says why."""


@dataclass(frozen=True)
class Scenario:
    key: str
    ref: str  # the witnessed-test case it rehearses (playbook 3.2), if any
    title: str
    summary: str
    run: Callable[[Context, Step], str]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Step:
    """The evidence one scenario builds up: message ids, payload hashes, notes, measurements."""

    result: ScenarioResult
    recorder: Recorder
    _last_progress: float = 0.0

    def message(self, mesh_id: str) -> str:
        if mesh_id not in self.result.message_ids:
            self.result.message_ids.append(mesh_id)
        return mesh_id

    def payload(self, label: str, data: bytes, **extra: Any) -> dict[str, Any]:
        entry = {"label": label, "size": len(data), "sha256": sha256(data), **extra}
        self.result.payloads.append(entry)
        return entry

    def note(self, text: str) -> None:
        self.result.notes.append(text)

    def measure(self, key: str, value: Any) -> None:
        self.result.measurements[key] = value

    def check(self, condition: bool, failure: str) -> None:
        if not condition:
            raise ScenarioFailed(failure)

    def progress(self, text: str, *, every: float = 1.0) -> None:
        """Show what a long scenario is doing on the run page (at most once a second)."""
        now = time.monotonic()
        if now - self._last_progress >= every:
            self._last_progress = now
            type(self.result).objects.filter(pk=self.result.pk).update(reason=text)

    def exchanges(
        self, mailbox_id: str | None = None, method: str | None = None, path_suffix: str = ""
    ) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.recorder.entries
            if (mailbox_id is None or entry["mailbox"] == mailbox_id)
            and (method is None or entry["method"] == method)
            and entry["path"].endswith(path_suffix)
        ]


@dataclass
class Context:
    """The run's settings and its two MESH clients (each records its exchanges)."""

    run: ConformanceRun
    mailbox: Mailbox
    peer: Mailbox
    client: meshcore.MeshClient
    peer_client: meshcore.MeshClient
    recorder: Recorder
    high_volume_count: int
    chunk_size: int
    # How long to wait for a message to be listed in an inbox (MESH is eventually consistent).
    delivery_timeout: float
    poll_every: float
    make_client: Callable[..., Any]
    # Raises RunStopped when the run has lost a claim it needs; long scenarios call it as they go.
    checkpoint: Callable[[], None] = lambda: None
    # MESH id -> the client of the mailbox it was delivered to, until it is acknowledged.
    outstanding: dict[str, meshcore.MeshClient] = field(default_factory=dict)

    @property
    def workflow_id(self) -> str:
        return self.run.workflow_id

    @property
    def reply_workflow_id(self) -> str:
        return self.run.reply_workflow_id

    @property
    def is_sandbox(self) -> bool:
        return self.run.is_sandbox

    def local_id(self, label: str) -> str:
        return f"neomesh-conformance-{self.run.pk}-{label}-{secrets.token_hex(4)}"

    def client_for(self, mailbox_id: str) -> meshcore.MeshClient:
        return self.client if mailbox_id == self.mailbox.mailbox_id else self.peer_client

    def send(
        self,
        step: Step,
        sender: meshcore.MeshClient,
        to: str,
        workflow_id: str,
        data: bytes,
        label: str,
        **options: Any,
    ) -> str:
        """Send and register the message: its id and payload hash go into the evidence."""
        options.setdefault("local_id", self.local_id(label))
        options.setdefault("subject", f"NeoMesh conformance run {self.run.pk}: {label}")
        mesh_id = sender.send(to, workflow_id, data, **options)
        self.outstanding[mesh_id] = self.client_for(to)
        step.message(mesh_id)
        step.payload(f"{label} (sent)", data, message_id=mesh_id)
        return mesh_id

    def wait_listed(
        self, receiver: meshcore.MeshClient, ids: Iterable[str], step: Step | None = None
    ) -> set[str]:
        """Poll the receiver's inbox until every id is listed; returns those never listed."""
        wanted = set(ids)
        deadline = time.monotonic() + self.delivery_timeout
        while True:
            self.checkpoint()
            listed = set(receiver.iter_inbox())
            missing = wanted - listed
            if not missing or time.monotonic() >= deadline:
                return missing
            if step is not None:
                step.progress(f"Waiting for {len(missing)} message(s) to reach the inbox…")
            time.sleep(self.poll_every)

    def receive(
        self, step: Step, receiver: meshcore.MeshClient, mesh_id: str, label: str
    ) -> tuple[meshcore.MessageInfo, bytes]:
        into = io.BytesIO()
        info = receiver.download(mesh_id, into)
        data = into.getvalue()
        step.payload(f"{label} (received)", data, message_id=mesh_id)
        return info, data

    def acknowledge(self, receiver: meshcore.MeshClient, mesh_id: str) -> None:
        receiver.acknowledge(mesh_id)
        self.outstanding.pop(mesh_id, None)

    def deliver(
        self,
        step: Step,
        sender: meshcore.MeshClient,
        to: str,
        workflow_id: str,
        data: bytes,
        label: str,
        **options: Any,
    ) -> tuple[str, meshcore.MessageInfo, bytes]:
        """Send, wait until listed, download and acknowledge: the round trip most scenarios need."""
        mesh_id = self.send(step, sender, to, workflow_id, data, label, **options)
        receiver = self.client_for(to)
        step.check(
            not self.wait_listed(receiver, [mesh_id], step),
            f"{mesh_id} was not listed in {to}'s inbox within {self.delivery_timeout:.0f} s.",
        )
        info, received = self.receive(step, receiver, mesh_id, label)
        self.acknowledge(receiver, mesh_id)
        return mesh_id, info, received

    def cleanup(self) -> str:
        """Acknowledge whatever a failed scenario left in either inbox (only this run's messages)."""
        left = dict(self.outstanding)
        if not left:
            return "Nothing left to clean up: every message the run delivered was acknowledged."
        done, problems, unreachable = 0, [], set()
        for mesh_id, receiver in left.items():
            self.outstanding.pop(mesh_id, None)
            if id(receiver) in unreachable:
                problems.append(f"{mesh_id}: not tried, the mailbox did not answer")
                continue
            try:
                receiver.acknowledge(mesh_id)
                done += 1
            except (
                meshcore.MeshTransientError,
                meshcore.MeshAuthenticationError,
                meshcore.MeshTLSError,
            ) as exc:
                # The mailbox itself is out of reach: do not wait out retries for every message.
                unreachable.add(id(receiver))
                problems.append(f"{mesh_id}: {exc}")
            except meshcore.MeshError as exc:
                problems.append(f"{mesh_id}: {exc}")
        text = f"Acknowledged {done} message(s) that failed scenarios left behind."
        if problems:
            text += f" Could not acknowledge {len(problems)}: {problems[0]}"
        return text[:300]


def started(result: ScenarioResult) -> None:
    from ..models import Outcome

    result.outcome, result.started_at, result.reason = Outcome.RUNNING, timezone.now(), ""
    result.save(update_fields=["outcome", "started_at", "reason"])


def payload_text(label: str, size: int) -> bytes:
    """A readable, mildly compressible payload: CSV rows with random values, `size` bytes long."""
    noise = secrets.token_hex(size // 2 + 16).encode()
    name = label.encode()
    out = bytearray(b"row,label,value\n")
    number = offset = 0
    while len(out) < size:
        number += 1
        out += b"%d,%s,%s\n" % (number, name, noise[offset : offset + 24])
        offset = (offset + 24) % (len(noise) - 24)
    return bytes(out[:size])
