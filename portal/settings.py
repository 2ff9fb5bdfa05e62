"""NeoMesh settings: one file, read from the environment (and an optional `.env`).

Development works out of the box: SQLite and payloads under `var/`, django-q2 on its ORM broker, and
secrets generated once into `var/dev-secrets.json`. Production mode (`NEOMESH_PRODUCTION=true`)
refuses to start without a real `SECRET_KEY` and `FIELD_ENCRYPTION_KEYS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

PRODUCTION = env.bool("NEOMESH_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
VAR_DIR = Path(env.str("NEOMESH_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secrets() -> dict[str, str]:
    """Secrets for development only, generated once so that the web server and workers agree."""
    path = VAR_DIR / "dev-secrets.json"
    if not path.exists():
        values = {
            "secret_key": secrets.token_urlsafe(50),
            "field_encryption_key": Fernet.generate_key().decode(),
        }
        # Create exclusively so two processes starting together cannot write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle)
        except FileExistsError:
            pass
    return json.loads(path.read_text())


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "Production mode needs SECRET_KEY: at least 50 random characters."
        )
    if not FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "Production mode needs FIELD_ENCRYPTION_KEYS: one or more Fernet keys, newest first "
            "(make one with `manage.py generate_encryption_key`)."
        )
    for _position, _key in enumerate(FIELD_ENCRYPTION_KEYS, start=1):
        # Refuse now rather than at the first secret a worker reads; never echo the key itself.
        try:
            Fernet(_key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {_position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes); make one with `manage.py generate_encryption_key`."
            ) from None
else:
    _dev = _dev_secrets()
    SECRET_KEY = env.str("SECRET_KEY", default=_dev["secret_key"])
    FIELD_ENCRYPTION_KEYS = env.list(
        "FIELD_ENCRYPTION_KEYS", default=[_dev["field_encryption_key"]]
    )

# The audit chain's sealing keys, held outside the database: `id:secret` pairs, newest first, from
# the environment or a key file (one pair a line). Retired keys stay listed to verify old records.
AUDIT_CHAIN_KEY_FILE = env.str("AUDIT_CHAIN_KEY_FILE", default="")
if AUDIT_CHAIN_KEY_FILE:
    AUDIT_CHAIN_KEYS = [
        line.strip()
        for line in Path(AUDIT_CHAIN_KEY_FILE).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
else:
    AUDIT_CHAIN_KEYS = env.list("AUDIT_CHAIN_KEYS", default=[])
if not AUDIT_CHAIN_KEYS and PRODUCTION:
    raise ImproperlyConfigured(
        "Production mode needs AUDIT_CHAIN_KEYS (or AUDIT_CHAIN_KEY_FILE): 'id:secret' pairs, "
        "newest first, with secrets of 32+ random characters, kept outside the database."
    )
for _position, _pair in enumerate(AUDIT_CHAIN_KEYS, start=1):
    _id, _, _secret = _pair.partition(":")
    if not _id.strip() or len(_secret.strip()) < 32:
        # Never echo the key itself.
        raise ImproperlyConfigured(
            f"AUDIT_CHAIN_KEYS: key {_position} is not 'id:secret' with a secret of 32+ characters."
        )
if not AUDIT_CHAIN_KEYS:
    # Development: a key derived from the development secret key, so every process agrees.
    AUDIT_CHAIN_KEYS = [
        "dev:" + hashlib.sha256(b"neomesh audit chain:" + SECRET_KEY.encode()).hexdigest()
    ]
# Where the chain head is published, append-only (see docs/deployment.md); also logged.
AUDIT_HEAD_FILE = env.str("AUDIT_HEAD_FILE", default=str(VAR_DIR / "audit-heads.log"))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "auditlog",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_static",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "portal.accounts",
    "portal.mailboxes",
    "portal.certificates",
    "portal.messaging",
    "portal.front",
    "portal.audit",
    "portal.events",
    "portal.ops",
    "portal.onboarding",
    "portal.conformance",
    "portal.alerts",
    "portal.integrations",
    "portal.api",
]

MIDDLEWARE = [
    # First: answers /healthz and /metrics for load balancers and Prometheus, which address a
    # backend by its IP over plain HTTP, before the host check and the HTTPS redirect below.
    "portal.ops.middleware.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, which reads the body: an over-long Content-Length is refused unread (413).
    "portal.lib.bodylimit.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.reach: which organisations and mailboxes the person sees (portal.accounts.reach).
    "portal.accounts.middleware.ReachMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A person whose role needs a second factor sees only its pages until they pass it.
    "portal.accounts.middleware.FactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-auditlog's, with the trusted client address (portal.lib.http).
    "portal.audit.middleware.AuditMiddleware",
    "csp.middleware.CSPMiddleware",
    # templates/404.html under DEBUG too (the demo), inside CSP so that it gets the policy.
    "portal.lib.notfound.FriendlyNotFoundMiddleware",
    # Last, so that a locked-out sign-in is answered before any view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.accounts.context_processors.navigation",
                "portal.alerts.context_processors.alerts",
            ],
            # The badges every app's templates use live in the ground layer (docs/architecture.md).
            "libraries": {"neomesh": "portal.lib.templatetags.neomesh"},
        },
    },
]

# How often the dashboard and the mailbox pages fetch their live parts (health, state), in seconds.
LIVE_REFRESH_SECONDS = env.float("LIVE_REFRESH_SECONDS", default=15)

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'neomesh.sqlite3'}")}
_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _SQLITE:
    # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the write lock
    # up front, so concurrent writers wait (up to `timeout`) instead of failing mid-transaction.
    # synchronous=FULL syncs the WAL on every commit: a message's row must survive a power cut
    # once MESH has been told it was received (NORMAL may lose the last commits).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests on a file, one per test process, as in production: an in-memory database shared between
    # threads (a poll's receiver threads, a claim's heartbeat) fails at once with "database table is
    # locked" where a file's writers wait their turn.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
# Persistent connections (seconds): 60 on PostgreSQL, where each new connection is a server
# process (a worker opened one a task: 13 ms of worker CPU a message in a burst became 20; health
# checks replace a connection the server has dropped); 0 on SQLite, which opens a file.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if _SQLITE else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses sign-ins after repeated failures.
    "axes.backends.AxesStandaloneBackend",
    # Django's, refusing passwords when local accounts are off (but for the break-glass accounts).
    "portal.accounts.backends.AccountBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Single sign-on with OpenID Connect (portal/accounts/sso.py): on when OIDC_ISSUER is set. The
# provider's endpoints come from its discovery document; authorization code flow with PKCE (S256),
# state and nonce. Register https://<portal host>/accounts/oidc/callback/ as the redirect URI and
# https://<portal host>/accounts/login/ as the post-logout redirect URI.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
# client_secret_basic, or client_secret_post for providers that want the secret in the body.
OIDC_TOKEN_AUTH_METHOD = env.str("OIDC_TOKEN_AUTH_METHOD", default="client_secret_basic")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
# Extra authorization request parameter (e.g. CIS2's authentication assurance level).
OIDC_ACR_VALUES = env.str("OIDC_ACR_VALUES", default="")
# What the sign-in button says: "Sign in with <OIDC_PROVIDER_NAME>".
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
# The claims read from the ID token and the userinfo answer; a dotted path reaches into objects
# and lists (CIS2: `nhsid_nrbac_roles.role_code`).
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_ROLE_CLAIM = env.str("OIDC_ROLE_CLAIM", default="groups")
OIDC_ORGANISATION_CLAIM = env.str("OIDC_ORGANISATION_CLAIM", default="groups")
# claim value=role (roles: portal/accounts/roles.py), comma-separated; several roles: a;b.
OIDC_ROLE_MAP = env.dict("OIDC_ROLE_MAP", default={})
# claim value=ODS code of an organisation NeoMesh knows (several: X26;Y27; `*` = every organisation).
OIDC_ORGANISATION_MAP = env.dict("OIDC_ORGANISATION_MAP", default={})
# The organisation claim's values are ODS codes themselves (CIS2's `org_code`): no map needed.
OIDC_ORGANISATION_CLAIM_IS_ODS_CODE = env.bool("OIDC_ORGANISATION_CLAIM_IS_ODS_CODE", default=False)
# Ask the userinfo endpoint too (where CIS2 keeps its role claims); its `sub` must match.
OIDC_USERINFO = env.bool("OIDC_USERINFO", default=True)
# Sign-out also ends the provider's session (its end_session_endpoint, with id_token_hint).
OIDC_END_PROVIDER_SESSION = env.bool("OIDC_END_PROVIDER_SESSION", default=True)
OIDC_TIMEOUT_SECONDS = env.int("OIDC_TIMEOUT_SECONDS", default=10)
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed."
    )
if OIDC_ISSUER and PRODUCTION and not OIDC_ISSUER.startswith("https://"):
    raise ImproperlyConfigured("OIDC_ISSUER must be an https:// address in production.")
# Password sign-in. Off: only the break-glass accounts named here may sign in with a password
# (each such sign-in is audited `auth.break_glass` and logged at CRITICAL).
LOCAL_ACCOUNTS_ENABLED = env.bool("LOCAL_ACCOUNTS_ENABLED", default=True)
BREAK_GLASS_USERNAMES = env.list("BREAK_GLASS_USERNAMES", default=[])

# Security baseline (issue: audit and access control).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False
# Rotating addresses does not help: a username with this many failures from anywhere is locked too
# (ours, read by portal.accounts.throttling.LoginThrottle).
AXES_USERNAME_FAILURE_LIMIT = env.int(
    "LOGIN_USERNAME_FAILURE_LIMIT", default=3 * AXES_FAILURE_LIMIT
)
# One address trying many usernames is locked after this many failures (ours, too).
AXES_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=4 * AXES_FAILURE_LIMIT)
# Each failure is kept here (the admin's "Access failures", at most 1,000 per username), not in the
# sealed audit trail, which records each lockout once per window instead.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_HANDLER = "portal.accounts.throttling.LoginThrottle"
# The same client address the audit trail records.
AXES_CLIENT_IP_CALLABLE = "portal.lib.http.client_ip"
# A wrong second-factor code counts as a failed sign-in; the code itself is never logged.
AXES_SENSITIVE_PARAMETERS = ["code"]
# How many reverse proxies we run in front of Django, each appending to X-Forwarded-For. 0 (the
# default) means the header is the client's own text and is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# The second factor (portal/accounts/factors.py). On (the default): superusers, mailbox admins and
# anyone holding one of these permissions must pass an authenticator-app code after signing in
# with a password. Off only for a closed development machine: production refuses it.
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=True)
if PRODUCTION and not MFA_REQUIRED:
    raise ImproperlyConfigured("Production mode needs MFA_REQUIRED on (the second factor).")
MFA_REQUIRED_PERMISSIONS = [
    "messaging.send_message",
    "messaging.download_payload",
    "onboarding.override_gate",
]
# An OpenID Connect sign-in whose ID token's `amr` holds one of these counts as the second factor
# (RFC 8176 values; the OIDC sign-in calls portal.accounts.factors.oidc_asserted_mfa).
MFA_OIDC_AMR_VALUES = env.list(
    "MFA_OIDC_AMR_VALUES", default=["mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris"]
)
# The most dangerous actions need a factor checked within this many minutes (step-up).
STEP_UP_MINUTES = env.int("STEP_UP_MINUTES", default=5)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="NeoMesh")
# Invitations (portal/accounts/people.py): the set-your-password link works once, for this many
# days; it is emailed (EMAIL_* settings, as the alerts) when on and the person has an address,
# otherwise shown once to the admin who invited them.
PEOPLE_INVITE_DAYS = env.int("PEOPLE_INVITE_DAYS", default=3)
PASSWORD_RESET_TIMEOUT = PEOPLE_INVITE_DAYS * 24 * 3600
# Sessions end after two idle hours, and with the browser.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=2 * 60 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The preload directive is only a consent: nothing is preloaded until the registrable domain is
    # submitted to hstspreload.org. On, `check --deploy` is clean; SECURE_HSTS_PRELOAD=false opts out.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


# A strict content security policy: no inline script or style, nothing from other origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        # A form may lead to the identity provider: sign-out ends its session too.
        "form-action": ["'self'", *([_origin(OIDC_ISSUER)] if OIDC_ISSUER else [])],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Development serves straight from static/; production from collectstatic's STATIC_ROOT.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# Message payloads live in the payload store, never in the database: a local directory by default,
# or S3-compatible object storage (PAYLOAD_STORE=s3://bucket/prefix?...; see portal/lib/stores.py).
PAYLOAD_ROOT = Path(env.str("PAYLOAD_ROOT", default=str(VAR_DIR / "payloads")))
PAYLOAD_STORE = env.str("PAYLOAD_STORE", default=PAYLOAD_ROOT.resolve().as_uri())
# Payloads are encrypted at rest (AES-256-GCM, a key per payload wrapped by PAYLOAD_KEY_WRAPPER).
PAYLOAD_ENCRYPTION = env.bool("PAYLOAD_ENCRYPTION", default=True)
PAYLOAD_KEY_WRAPPER = env.str("PAYLOAD_KEY_WRAPPER", default="portal.lib.envelope.FernetKeyWrapper")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # whitenoise serves static files from gunicorn; hashed names in production for long caching.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    "payloads": {
        "BACKEND": "portal.lib.payloads.PayloadStorage",
        "OPTIONS": {"url": PAYLOAD_STORE},
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# Uploads above this size are spooled to disk by Django instead of held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The largest request body a page without uploads accepts; pages with uploads declare their own
# (portal.lib.bodylimit). Refused by Content-Length before the body is read.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=4 * 1024 * 1024)
# A message search still running after this long is stopped and the page says so (words common to
# millions of messages but rarely together; portal.lib.querytime). 0: no limit.
SEARCH_TIME_LIMIT_SECONDS = env.float("SEARCH_TIME_LIMIT_SECONDS", default=5.0)

# MESH. The sandbox URL is what `make run` starts; the others are NHS England's published hosts.
MESH_SANDBOX_URL = env.str("MESH_SANDBOX_URL", default="http://127.0.0.1:8700")
MESH_BASE_URLS = {
    "sandbox": MESH_SANDBOX_URL,
    "integration": "https://msg.intspineservices.nhs.uk",
    "deployment": "https://msg.depspineservices.nhs.uk",
    "live": "https://mesh-sync.spineservices.nhs.uk",
}
# Where mailbox credentials may go besides NHS England's published hosts (portal.mailboxes.hosts):
# base URLs for mailboxes outside the sandbox (a relay, say), and hosts a sandbox mailbox may reach
# besides loopback and MESH_SANDBOX_URL's host.
MESH_ALLOWED_BASE_URLS = env.list("MESH_ALLOWED_BASE_URLS", default=[])
MESH_SANDBOX_HOSTS = env.list("MESH_SANDBOX_HOSTS", default=[])
MESH_SANDBOX_SHARED_KEY = env.str("MESH_SANDBOX_SHARED_KEY", default="TestKey")
MESH_APPLICATION_NAME = env.str("MESH_APPLICATION_NAME", default="NeoMesh")
MESH_MAX_UPLOAD_BYTES = env.int("MESH_MAX_UPLOAD_BYTES", default=20 * 1024**3)
# Unset: each send goes in one request when it fits the mailbox's MESH request limit, else in
# chunks meshcore sizes to fit it. Set only to force a fixed raw chunk size (tests, investigations).
MESH_CHUNK_SIZE = env.int("MESH_CHUNK_SIZE", default=None)
# What a received message may become (decoded): refused and quarantined past these.
MESH_MAX_MESSAGE_BYTES = env.int("MESH_MAX_MESSAGE_BYTES", default=100 * 1024**3)
MESH_MAX_CHUNK_BYTES = env.int("MESH_MAX_CHUNK_BYTES", default=1024**3)
MESH_MAX_EXPANSION_RATIO = env.float("MESH_MAX_EXPANSION_RATIO", default=200.0)
MESH_MAX_CHUNKS = env.int("MESH_MAX_CHUNKS", default=20_000)
# Free disk kept for everything else: no download starts below it, none may eat into it.
MESH_PAYLOAD_DISK_RESERVE_BYTES = env.int("MESH_PAYLOAD_DISK_RESERVE_BYTES", default=1024**3)
# One MESH answer (body included) may take this long, plus 1 s per 64 KiB of a download.
MESH_REQUEST_DEADLINE_SECONDS = env.float("MESH_REQUEST_DEADLINE_SECONDS", default=120.0)
# A message that fails to be received waits this long before the next try, doubling each time up
# to the maximum; after MESH_INBOUND_QUARANTINE_AFTER failures it waits for a person.
MESH_INBOUND_RETRY_SECONDS = env.int("MESH_INBOUND_RETRY_SECONDS", default=300)
MESH_INBOUND_RETRY_MAX_SECONDS = env.int("MESH_INBOUND_RETRY_MAX_SECONDS", default=6 * 3600)
MESH_INBOUND_QUARANTINE_AFTER = env.int("MESH_INBOUND_QUARANTINE_AFTER", default=5)

Q_CLUSTER = {
    "name": "neomesh",
    "workers": env.int("Q_WORKERS", default=2),
    # A large chunked send can take a long time; `retry` must stay above `timeout`.
    "timeout": env.int("Q_TIMEOUT", default=3600),
    "retry": env.int("Q_RETRY", default=3700),
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    # Successful results are kept for the pages that show a task's outcome, pruned by a schedule
    # (portal.lib.taskresults), not by django-q2 inside every task's save.
    "save_limit": 0,
    # How long an idle worker cluster waits before asking the database broker for tasks again
    # (django-q2's default): a send queued from the portal or the API starts within this long.
    # Each ask is one indexed read of a small table; Redis (REDIS_URL) does not poll.
    "poll": env.float("Q_POLL_SECONDS", default=0.2),
    "orm": "default",
    "sync": env.bool("Q_SYNC", default=False),
}
# How many successful task results the "Prune task results" schedule keeps (failures are all kept).
TASK_RESULTS_KEPT = env.int("TASK_RESULTS_KEPT", default=1000)
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Scale-out: django-q2 on Redis, and a shared cache for its cluster statistics and locks.
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }

# Claims on work: a claim not refreshed within its lease belongs to a dead worker.
OUTBOX_CLAIM_LEASE_SECONDS = env.int("OUTBOX_CLAIM_LEASE_SECONDS", default=120)
POLL_CLAIM_LEASE_SECONDS = env.int("POLL_CLAIM_LEASE_SECONDS", default=120)
# Work done at once inside one claim: MESH requests a poll makes at once (downloads and
# acknowledgements), and messages of one mailbox the outbox sends at once (one task a mailbox
# sends them). Each is one open connection to MESH. A poll needs two round trips a message, a
# small send one, so with ~80 ms round trips to MESH a poll of 12 receives about 63 messages a
# second (8: 44, 4: 22) and a send task of 8 sends about 88 (4: 39-47); on a link with no latency,
# which live MESH never is, the machine bounds the rate (README, `throughput`).
POLL_CONCURRENCY = env.int("POLL_CONCURRENCY", default=12)
OUTBOX_CONCURRENCY = env.int("OUTBOX_CONCURRENCY", default=8)
# How this host's workers sign their claims (`<name>:<pid>:<thread>`); the host name when unset.
WORKER_NAME = env.str("NEOMESH_WORKER_NAME", default="")

# The HTTP API (portal.api): tokens or a signed-in session (with CSRF), problem details for errors,
# each token's own rate limit counted in the default cache (shared across hosts with REDIS_URL).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.auth.BearerTokenAuthentication",
        # A signed-in person, with CSRF enforced on every unsafe method.
        "portal.api.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.auth.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portal.api.auth.JsonOnlyNegotiation",
    "EXCEPTION_HANDLER": "portal.api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NeoMesh API",
    "DESCRIPTION": "Send, follow, collect and confirm MESH messages with a scoped API token.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the drf-spectacular-sidecar package, served as our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Events (portal.events): how long published events are kept, and how many times a consumer's
# failing handler is retried on one event before it is skipped (and recorded as skipped).
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=90)
EVENTS_HANDLER_MAX_ATTEMPTS = env.int("EVENTS_HANDLER_MAX_ATTEMPTS", default=8)
# A mailbox whose polls have failed for this long raises `mailbox.poll_failing` (once per problem).
MAILBOX_POLL_FAILING_MINUTES = env.int("MAILBOX_POLL_FAILING_MINUTES", default=15)
# A sent message not acknowledged by its recipient within this many hours raises
# `message.ack_overdue`, unless its workflow says otherwise.
MESSAGING_ACK_EXPECTED_HOURS = env.int("MESSAGING_ACK_EXPECTED_HOURS", default=24)

# Alerts (portal.alerts). Email goes through Django's SMTP backend (development prints it instead).
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="NeoMesh <neomesh@localhost>")
# How long one email or webhook call may take before it counts as failed (and is retried).
ALERTS_SEND_TIMEOUT_SECONDS = env.int("ALERTS_SEND_TIMEOUT_SECONDS", default=10)
# The portal's address as people reach it, for the link to the alerts inbox in each alert.
ALERTS_PORTAL_URL = env.str("ALERTS_PORTAL_URL", default="")
# Invitations go by email when this is on (by default: whenever email really leaves this host).
PEOPLE_INVITE_EMAIL = env.bool(
    "PEOPLE_INVITE_EMAIL", default=EMAIL_BACKEND.endswith("smtp.EmailBackend")
)
# Deliveries of received messages onwards (portal.integrations): attempts before a dead letter.
INTEGRATIONS_DELIVERY_MAX_ATTEMPTS = env.int("INTEGRATIONS_DELIVERY_MAX_ATTEMPTS", default=8)
# The portal's address as the organisation's systems reach it: the base of the signed payload
# links in webhook notices. How long such a link works (a destination's "link_ttl" overrides it).
INTEGRATIONS_PUBLIC_URL = env.str("INTEGRATIONS_PUBLIC_URL", default="http://127.0.0.1:8000")
INTEGRATIONS_PAYLOAD_LINK_SECONDS = env.int("INTEGRATIONS_PAYLOAD_LINK_SECONDS", default=86400)

# django-auditlog captures model changes; portal.audit seals each entry into the hash chain.
AUDITLOG_MASK_CALLABLE = "portal.audit.services.mask_secret"
# The "no secrets in notes" guard (portal/onboarding/guard.py): after this many refused texts, or
# this many texts checked, within the window, every text of that person is refused until it passes.
SECRET_GUARD_REFUSALS = env.int("SECRET_GUARD_REFUSALS", default=3)
SECRET_GUARD_CHECKS = env.int("SECRET_GUARD_CHECKS", default=60)
SECRET_GUARD_WINDOW_MINUTES = env.int("SECRET_GUARD_WINDOW_MINUTES", default=60)

# Addresses come from portal.audit.middleware.AuditMiddleware (the trusted client address, never
# X-Forwarded-For as the client wrote it); no correlation id is read from request headers.
AUDITLOG_DISABLE_REMOTE_ADDR = False
AUDITLOG_CID_HEADER = None

# /metrics: a bearer token when set, otherwise only these networks may scrape. Production needs the
# token: behind a reverse proxy on the same host every request comes from 127.0.0.1.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_REQUIRE_TOKEN = PRODUCTION
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Azure SDK logs every request's headers at INFO: noise, and never wanted in the log.
        "azure": {"level": "WARNING"},
    },
}
