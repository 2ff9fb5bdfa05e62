"""Shared fixtures: a real mesh-sandbox server, and the rule that no test may be skipped."""

from __future__ import annotations

import os

import pytest

from tests.sandbox import MeshSandbox


@pytest.fixture(scope="session")
def mesh_sandbox():
    """One real mesh-sandbox for the whole run, on a free loopback port."""
    with MeshSandbox() as server:
        yield server


@pytest.fixture
def sandbox(mesh_sandbox):
    """The session's mesh-sandbox, emptied before the test."""
    mesh_sandbox.reset()
    return mesh_sandbox


@pytest.fixture(autouse=True)
def _isolated_payloads(request, tmp_path):
    """Payload files of each test go to its own temporary directory, never to var/; fast hashing."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    payloads = {
        **settings.STORAGES["payloads"],
        "OPTIONS": {"location": str(tmp_path / "payloads")},
    }
    settings.STORAGES = {**settings.STORAGES, "payloads": payloads}
    # The audit chain's published heads: per test too.
    settings.AUDIT_HEAD_FILE = str(tmp_path / "audit-heads.log")
    # The persona fixtures hash a password each; the production hasher is slow by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # A FileField resolves its storage once, at import: point it at this test's storage too.
    from django.core.files.storage import storages

    from portal.messaging.models import Message

    field = Message._meta.get_field("payload")
    original = field.storage
    field.storage = storages["payloads"]
    yield
    field.storage = original


@pytest.fixture(autouse=True)
def _force_login_proves_the_factor(request, monkeypatch):
    """`client.force_login` stands for a whole sign-in: the password and, where the person's role
    needs one, the second factor (tests.factors.prove_factor). Tests of the factor itself opt out
    with `@pytest.mark.factor_unproven`."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    if request.node.get_closest_marker("factor_unproven"):
        return
    from django.test import Client

    from tests.factors import prove_factor

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        prove_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def task_queue(db):
    """The django-q2 broker's queue, ORM or Redis alike, emptied first: count what a test enqueues.

    On Redis (make test's second phase) nothing rolls back between tests, hence the purge.
    """
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    return broker


# Fixtures through which a test reaches the test database (pytest-django refuses it to any other).
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="Run only the tests that use the database (make test's PostgreSQL phase): a test "
        "pytest-django lets at no database runs the same on any engine, and ran in phase 1.",
    )


def uses_database(item) -> bool:
    if item.get_closest_marker("django_db") or item.get_closest_marker("scaleout"):
        return True
    return bool(DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--database-tests-only"):
        return
    # Subprocesses escape pytest-django's guard: the tests that start the portal in one
    # (tests/ops/test_run_local.py, the production probes) drop DATABASE_URL, so SQLite, always.
    kept = [item for item in items if uses_database(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if not uses_database(item)])
        items[:] = kept


def pytest_sessionfinish(session, exitstatus):
    # A skipped test is a test that did not run: CI must not go green on it.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and not os.environ.get("NEOMESH_ALLOW_SKIPS"):
        reporter.write_line(
            f"{len(skipped)} test(s) skipped: the project must install what its tests need.",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Personas: one per role, and an outsider with no role at all.
@pytest.fixture
def admin_user(db):
    from portal.accounts.roles import MAILBOX_ADMIN
    from tests.factories import make_user

    return make_user(MAILBOX_ADMIN, username="alice-admin")


@pytest.fixture
def lead_user(db):
    from portal.accounts.roles import ONBOARDING_LEAD
    from tests.factories import make_user

    return make_user(ONBOARDING_LEAD, username="olu-lead")


@pytest.fixture
def auditor_user(db):
    from portal.accounts.roles import AUDITOR
    from tests.factories import make_user

    return make_user(AUDITOR, username="aisha-auditor")


@pytest.fixture
def outsider_user(db):
    from tests.factories import make_user

    return make_user(None, username="oscar-outsider")


@pytest.fixture
def superuser(db):
    from tests.factories import make_user

    return make_user(None, username="sam-super", superuser=True)


@pytest.fixture
def sandbox_mailboxes(db, sandbox, settings):
    """X26ABC1 and X26ABC2 in the portal, pointed at the test's mesh-sandbox."""
    from tests.factories import make_mailbox

    settings.MESH_BASE_URLS = {**settings.MESH_BASE_URLS, "sandbox": sandbox.url}
    return make_mailbox("X26ABC1"), make_mailbox("X26ABC2")


@pytest.fixture
def mesh_without_backoff(monkeypatch):
    """meshcore's retries as they are, without their backoff sleeps: for tests of what repeated
    failures lead to (alerts, events), not of the retries themselves (tests/meshcore does those)."""
    import meshcore

    class NoWaitClient(meshcore.MeshClient):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("sleep", lambda seconds: None)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(meshcore, "MeshClient", NoWaitClient)


@pytest.fixture(scope="session")
def s3_server():
    """One real S3-compatible server (moto's, as a process) for the whole run."""
    from tests.peers.s3 import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def azurite():
    """One real Azure Blob peer (Azurite, installed by `make azurite`) for the whole run."""
    from tests.peers.azurite import Azurite

    with Azurite() as server:
        yield server


@pytest.fixture
def s3_store(s3_server, settings, monkeypatch):
    """Payloads go to a fresh bucket on the S3 server for this test (SSE-S3 passed through)."""
    from django.core.files.storage import storages

    s3_server.reset()
    s3_server.client().create_bucket(
        Bucket="payloads", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    url = f"s3://payloads/neomesh?endpoint_url={s3_server.url}&region=eu-west-2&sse=AES256"
    settings.STORAGES = {
        **settings.STORAGES,
        "payloads": {"BACKEND": "portal.lib.payloads.PayloadStorage", "OPTIONS": {"url": url}},
    }
    from portal.lib import stores
    from portal.messaging.models import Message

    stores.from_url_cached.cache_clear()
    Message._meta.get_field("payload").storage = storages["payloads"]
    yield s3_server
    stores.from_url_cached.cache_clear()


@pytest.fixture(scope="session")
def portal_port():
    """The loopback port the browser journeys' NeoMesh listens on (the test provider knows it)."""
    from tests.sandbox import free_port

    return free_port()


@pytest.fixture(scope="session")
def oidc_provider(portal_port):
    """One real OpenID Connect provider (node-oidc-provider) for the whole run, its client's
    redirect URIs those of the test client (`testserver`) and of the browser journeys' NeoMesh."""
    from tests.peers.oidc import OidcProvider

    bases = ["http://testserver", f"http://127.0.0.1:{portal_port}"]
    with OidcProvider(
        redirect_uris=[f"{base}/accounts/oidc/callback/" for base in bases],
        post_logout_redirect_uris=[f"{base}/accounts/login/" for base in bases],
    ) as provider:
        yield provider


@pytest.fixture
def sso(oidc_provider, settings):
    """Single sign-on through the test provider, its groups mapped to roles and organisations
    X26 and Y27 (both created)."""
    from tests.factories import make_organisation

    for name, value in oidc_provider.settings().items():
        setattr(settings, name, value)
    settings.OIDC_PROVIDER_NAME = "the test provider"
    make_organisation()
    make_organisation(name="Other Trust", ods_code="Y27")
    return oidc_provider
