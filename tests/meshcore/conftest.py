"""Fixtures for meshcore tests: clients bound to the session's mesh-sandbox."""

from __future__ import annotations

import pytest

from meshcore import MeshClient
from tests.meshcore.helpers import Sleeps
from tests.peers.proxy import RecordingProxy
from tests.sandbox import PASSWORD, SHARED_KEY


@pytest.fixture
def make_client(sandbox):
    """make_client("X26ABC2", chunk_size=...) -> a MeshClient on the sandbox, closed afterwards."""
    clients: list[MeshClient] = []

    def make(mailbox_id: str = "X26ABC1", **kwargs) -> MeshClient:
        kwargs.setdefault("sleep", Sleeps())
        password = kwargs.pop("password", PASSWORD)
        base_url = kwargs.pop("base_url", sandbox.url)
        client = MeshClient(base_url, mailbox_id, password, SHARED_KEY, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sender(make_client) -> MeshClient:
    return make_client("X26ABC1")


@pytest.fixture
def recipient(make_client) -> MeshClient:
    return make_client("X26ABC2")


@pytest.fixture
def proxy(sandbox):
    """A recording proxy in front of the sandbox: what each request put on the wire."""
    with RecordingProxy(sandbox.url) as recording:
        yield recording


@pytest.fixture
def proxied_sender(make_client, proxy) -> MeshClient:
    """X26ABC1, talking to the sandbox through ``proxy``."""
    return make_client("X26ABC1", base_url=proxy.url)


@pytest.fixture(autouse=True)
def _isolated_payloads():
    """Overrides the portal's autouse fixture: meshcore tests never touch Django storage (and
    must run with ``-p no:django``, where the portal's version cannot set anything up)."""
    yield
