"""Production mode: `check --deploy` clean, secure cookies and HSTS, and no start without secrets.

Settings are read once per process, so each case runs Django in a child process with its own
environment (and a throwaway NEOMESH_VAR_DIR, so nothing touches var/).
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
HOST = "neomesh.example.org"


def production_env(tmp_path, **overrides) -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_"))
    }
    for name in (
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "AUDIT_CHAIN_KEYS",
        "AUDIT_CHAIN_KEY_FILE",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
    ):
        env.pop(name, None)
    env |= {
        "NEOMESH_PRODUCTION": "true",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "AUDIT_CHAIN_KEYS": "k1:" + secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": HOST,
        "NEOMESH_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    env |= overrides
    return {key: value for key, value in env.items() if value is not None}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({"SECRET_KEY": None}, "Production mode needs SECRET_KEY: at least 50 random characters."),
        ({"SECRET_KEY": "django-insecure-" + "x" * 50}, "Production mode needs SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "Production mode needs SECRET_KEY"),
        ({"FIELD_ENCRYPTION_KEYS": None}, "Production mode needs FIELD_ENCRYPTION_KEYS"),
        (
            {"FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode() + ",not-a-key"},
            "FIELD_ENCRYPTION_KEYS: key 2 is not a Fernet key",
        ),
        ({"AUDIT_CHAIN_KEYS": None}, "Production mode needs AUDIT_CHAIN_KEYS"),
        ({"AUDIT_CHAIN_KEYS": "k1:short"}, "AUDIT_CHAIN_KEYS: key 1 is not 'id:secret'"),
    ],
    ids=[
        "no-secret-key",
        "insecure-secret-key",
        "short-secret-key",
        "no-encryption-key",
        "malformed-key",
        "no-audit-key",
        "short-audit-key",
    ],
)
def test_production_mode_refuses_to_start_without_real_secrets(tmp_path, missing, message):
    result = run(["manage.py", "check"], production_env(tmp_path, **missing))
    assert result.returncode != 0
    assert message in result.stderr
    assert "not-a-key" not in result.stderr  # a key, even a broken one, is never echoed
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var" / "dev-secrets.json").exists()  # never falls back to dev keys


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment does
client = Client(HTTP_HOST="neomesh.example.org")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "debug": settings.DEBUG,
    "redirect": [plain.status_code, plain.get("Location", "")],
    "hsts": secure.get("Strict-Transport-Security", ""),
    "csrf_cookie_secure": bool(cookie["secure"]),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csp": secure.get("Content-Security-Policy", ""),
}))
"""


def test_production_mode_sends_hsts_and_secure_cookies_and_redirects_to_https(tmp_path):
    result = run(["-c", PROBE], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["redirect"] == [301, f"https://{HOST}/accounts/login/"]
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert seen["csrf_cookie_secure"] and seen["session_cookie_secure"]
    assert "default-src 'self'" in seen["csp"]
