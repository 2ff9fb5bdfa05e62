"""A real OpenID Connect provider: node-oidc-provider (tests/peers/oidc/), on a free loopback port.

`make setup` installs it (`npm ci` in tests/peers/oidc). The provider signs anyone in through its
development sign-in page (any password) with the claims of `ACCOUNTS`; an unlisted login is an
account with no claims beyond its subject. PKCE is required of every client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.sandbox import free_port, stop_process, wait_ready

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "neomesh-test"
CLIENT_SECRET = "a-test-client-secret-for-the-loopback-provider"
# The groups a directory would send: NeoMesh maps them to roles and organisations.
ADMINS, LEADS, AUDITORS, STAFF = "neomesh-admins", "neomesh-leads", "neomesh-auditors", "all-staff"
ORG_X26, ORG_Y27 = "org-x26", "org-y27"
ACCOUNTS = {
    "ada.sso": {
        "preferred_username": "ada.sso",
        "name": "Ada Lovelace",
        "email": "ada@example.nhs.uk",
        "email_verified": True,
        "groups": [ADMINS, ORG_X26, STAFF],
        # The provider checked a second factor: NeoMesh asks for no code of its own.
        "amr": ["pwd", "mfa"],
    },
    "leo.sso": {
        "preferred_username": "leo.sso",
        "name": "Leo Lead",
        "email": "leo@example.nhs.uk",
        "groups": [LEADS, ORG_Y27],
    },
    # Known to the directory but in no group NeoMesh maps: refused.
    "una.sso": {"preferred_username": "una.sso", "name": "Una Mapped", "groups": [STAFF]},
}


@dataclass
class OidcProvider:
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> OidcProvider:
        node = shutil.which("node")
        if not node or not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("oidc-provider is not installed: run `make setup` (npm ci).")
        self.port = self.port or free_port()
        config = {
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "client_name": "NeoMesh",
                    "redirect_uris": self.redirect_uris,
                    "post_logout_redirect_uris": self.post_logout_redirect_uris,
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                }
            ],
            "accounts": ACCOUNTS,
        }
        log = tempfile.NamedTemporaryFile(prefix="oidc-provider-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        env = {
            **os.environ,
            "OIDC_TEST_PORT": str(self.port),
            "OIDC_TEST_CONFIG": json.dumps(config),
        }
        self.process = subprocess.Popen(
            [node, str(HERE / "provider.js")],
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_ready(
            self.process,
            self._discoverable,
            name="oidc-provider",
            log=self.log_path.read_text,
            timeout=timeout,
        )
        return self

    def _discoverable(self) -> bool:
        try:
            return requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        stop_process(self.process)

    def settings(self) -> dict:
        """NeoMesh's settings for this provider (the group names of `ACCOUNTS` mapped)."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_SCOPES": "openid email profile groups",
            "OIDC_ROLE_MAP": {
                ADMINS: "Mailbox admin",
                LEADS: "Onboarding lead",
                AUDITORS: "Auditor",
            },
            "OIDC_ORGANISATION_MAP": {ORG_X26: "X26", ORG_Y27: "Y27"},
        }

    def sign_in(self, authorize_url: str, login: str) -> str:
        """What a browser does at the provider: sign in as `login`; returns the callback URL."""
        browser = requests.Session()
        response = browser.get(authorize_url, allow_redirects=False, timeout=10)
        for _ in range(10):
            location = response.headers.get("Location", "")
            if response.status_code in (302, 303) and not location.startswith(self.issuer):
                if location.startswith("/"):
                    location = urljoin(self.issuer, location)
                if not location.startswith(self.issuer):
                    return location
            if response.is_redirect:
                response = browser.get(
                    urljoin(response.url, location), allow_redirects=False, timeout=10
                )
                continue
            form = _LoginForm()
            form.feed(response.text)
            if not form.action:
                raise AssertionError(f"no sign-in form at the provider: {response.text[:500]}")
            response = browser.post(
                urljoin(response.url, form.action),
                data={"prompt": "login", "login": login, "password": "any"},
                allow_redirects=False,
                timeout=10,
            )
        raise AssertionError("the provider never redirected back")

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _LoginForm(HTMLParser):
    action = ""

    def handle_starttag(self, tag, attrs):
        if tag == "form" and not self.action:
            self.action = dict(attrs).get("action", "")
