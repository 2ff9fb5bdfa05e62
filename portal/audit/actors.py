"""Who does something, decided at the edge (a view, a command, a task, the API) and passed down.

Services take an `Actor` and hand it to `portal.audit.services.record`; they never look at a request
to find out who is acting.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Any

from portal.lib.http import client_ip, normalise_ip
from portal.lib.workers import worker_name

from .models import AuditRecord

Kind = AuditRecord.ActorKind


@dataclass(frozen=True)
class Actor:
    kind: str
    label: str
    user: Any = None
    ip: str | None = None
    token_id: int | None = None

    @classmethod
    def person(cls, request=None, *, user=None) -> Actor:
        """The signed-in user of `request` (or `user`) and the request's trusted address.

        With neither a request nor a user (a service called from code) the actor is the system.
        """
        if user is None and request is not None:
            user = getattr(request, "user", None)
            user = user if user is not None and user.is_authenticated else None
        if user is None and request is None:
            return cls.system()
        label = user.get_username() if user is not None else "anonymous"
        return cls(kind=Kind.PERSON, label=label, user=user, ip=client_ip(request))

    @classmethod
    def worker(cls) -> Actor:
        """A background worker: `worker <NEOMESH_WORKER_NAME or host>:<pid>`."""
        return cls(kind=Kind.WORKER, label=f"worker {worker_name(thread=False)}")

    @classmethod
    def command(cls) -> Actor:
        """An operator's management command: the OS user on this host is the actor."""
        try:
            who = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name in some containers
            who = "unknown"
        return cls(kind=Kind.PERSON, label=f"command line ({who}@{socket.gethostname()})")

    @classmethod
    def token(cls, *, label: str, ip: str | None = None, token_id: int | None = None) -> Actor:
        """A client of the HTTP API, known by its token."""
        return cls(kind=Kind.TOKEN, label=label, ip=normalise_ip(ip), token_id=token_id)

    @classmethod
    def system(cls, label: str = "anonymous", *, ip: str | None = None) -> Actor:
        """Nobody in particular: signals, migrations, code with no one behind it."""
        return cls(kind=Kind.SYSTEM, label=label, ip=normalise_ip(ip))


# The default actor of a service called with no one behind it (fixtures, data migrations).
SYSTEM = Actor.system()
