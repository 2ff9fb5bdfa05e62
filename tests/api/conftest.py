"""API tests run over real HTTP against the live server; MESH is the real mesh-sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from portal.api.models import Scope
from portal.api.services import GrantSpec, token_create
from portal.audit.services import Actor

ALL_SCOPES = [s.value for s in Scope]


def make_token(owner, mailboxes, *, scopes=ALL_SCOPES, patterns=(), name="pipeline", **kwargs):
    """A token with each of `scopes` on `mailboxes`; returns (token, the secret shown once)."""
    kwargs.setdefault("expires_at", timezone.now() + timedelta(days=30))
    grants = [
        GrantSpec(scope=s, mailboxes=list(mailboxes), workflow_patterns=list(patterns))
        for s in scopes
    ]
    return token_create(
        name=name, owner=owner, grants=grants, actor=Actor.system("test setup"), **kwargs
    )


class Api:
    """A program calling the API with a token, as a pipeline would (requests, real HTTP)."""

    def __init__(self, base: str, secret: str | None):
        self.base = base.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        if secret:
            self.http.headers["Authorization"] = f"Bearer {secret}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path, **kw):
        return self.http.get(self.url(path), timeout=30, **kw)

    def post(self, path, **kw):
        return self.http.post(self.url(path), timeout=30, **kw)


@pytest.fixture
def owner(admin_user):
    return admin_user


@pytest.fixture
def token_pair(owner, sandbox_mailboxes):
    return make_token(owner, sandbox_mailboxes)


@pytest.fixture
def api(live_server, token_pair):
    return Api(live_server.url, token_pair[1])
