"""Browser journeys: the whole stack as `make run` starts it, driven by Playwright in Chromium.

The stack (mesh-sandbox, qcluster, web server) runs in subprocesses with its own temporary var
directory and free ports, so these tests exercise exactly what a newcomer gets. Playwright drives
Debian's Chromium (`/usr/bin/chromium`); Playwright's own browser download cannot work here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.sandbox import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Stack:
    def __init__(self, var_dir: Path, web_port: int = 0, extra_env: dict | None = None):
        self.var_dir = var_dir
        self.web_port, self.sandbox_port = web_port or free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "NEOMESH_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "MESH_SANDBOX_URL": f"http://127.0.0.1:{self.sandbox_port}",
            "Q_WORKERS": "1",
            # The pages' live parts refresh every second here, not every 15: tests wait less.
            "LIVE_REFRESH_SECONDS": "1",
            **(extra_env or {}),
        }
        self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen | None = None
        self.log = var_dir / "stack.log"

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self) -> Stack:
        self.manage("migrate", "--noinput")
        self.manage("seed_demo")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_local", "--web", f"127.0.0.1:{self.web_port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"run_local exited:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + "/accounts/login/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"NeoMesh did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def sso_env(provider) -> dict[str, str]:
    """Single sign-on through the test provider, as environment variables (password sign-in on)."""
    env = {}
    for name, value in provider.settings().items():
        if isinstance(value, dict):
            value = ",".join(f"{key}={target}" for key, target in value.items())
        env[name] = value
    return {**env, "OIDC_PROVIDER_NAME": "the test provider"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory, portal_port, oidc_provider):
    """NeoMesh as `make run` starts it, with single sign-on through the test provider too."""
    var_dir = tmp_path_factory.mktemp("neomesh-stack")
    running = Stack(var_dir, web_port=portal_port, extra_env=sso_env(oidc_provider)).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, which Django's
    # async-safety check takes for async code: tests that make rows with the ORM while the browser
    # is open (live_server pages) are plain sync code, so the check is lifted while it is.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


# Authenticator keys the journeys enrolled, by (stack, username), and the last time step each used:
# the portal accepts a code once, so a second sign-in in the same 30 s uses a later step's code.
_KEYS: dict[tuple[str, str], bytes] = {}
_LAST_STEP: dict[tuple[str, str], int] = {}


def _code(who: tuple[str, str]) -> str:
    """The code of the step after the current one, always. The portal accepts one step either side
    of its own now, which it keeps one step ahead once such a code matched (the device's drift): a
    current step's code typed just before the 30 s turned was then refused, and the journey waited
    for a page that never came (a flake seen about once in three suites). The next step's code
    matches before and after the turn, with a drift of 0 or 1."""
    from django_otp.oath import TOTP

    totp = TOTP(_KEYS[who])
    step = max(totp.t() + 1, _LAST_STEP.get(who, -1) + 1)
    while step > totp.t() + 1:  # a code already used this step: wait for the next step
        time.sleep(0.5)
    _LAST_STEP[who] = step
    totp.time = time.time() + (step - totp.t()) * 30
    return f"{totp.token():06d}"


def sign_in(page, stack: Stack, username: str, password: str = "neomesh-demo") -> None:
    """Sign in as a person would: the password, then the authenticator app's code where the role
    needs one (enrolling the app at the first sign-in, as the page asks)."""
    page.goto(stack.url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    who = (stack.url, username)
    if "/accounts/factor/enrol/" in page.url:
        from base64 import b32decode

        secret = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
        _KEYS[who] = b32decode(secret)
        page.get_by_label("Code from the app").fill(_code(who))
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("link", name="I have stored them: continue").click()
    elif "/accounts/factor/verify/" in page.url:
        page.get_by_label("Code").fill(_code(who))
        page.get_by_role("button", name="Verify").click()
    else:
        return
    # The click returns before its page arrives: a goto() straight after can cancel the request
    # that marks the session verified, and the next page is the sign-in again (a journey then waits
    # 30 s for a link that never shows).
    try:
        page.wait_for_url(lambda url: "/accounts/" not in url, timeout=15_000)
    except PlaywrightTimeoutError:
        errors = page.locator(".error-summary, .errorlist, [role=alert]").all_inner_texts()
        raise AssertionError(
            f"{username} was not signed in: still at {page.url} ({' '.join(errors) or 'no error'};"
            f" code for step {_LAST_STEP.get(who)}, now step {int(time.time() // 30)})"
        ) from None


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory):
    """A stack of its own with the onboarding demo (live and integration mailboxes, the plan): the
    send form's LIVE banner and the accessibility sweep need them, and the shared `stack`'s
    journeys start their own plan for Demo Org."""
    running = Stack(tmp_path_factory.mktemp("neomesh-demo"))
    running.manage("migrate", "--noinput")
    running.manage("seed_demo")
    running.manage("seed_onboarding_demo", "--plan")
    running.start()
    yield running
    running.stop()
