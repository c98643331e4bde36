"""The hosted login in a real browser: headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright) against a real donjon process, mail caught by a local SMTP sink.

Logs in, self-registers, resets a password through the emailed link, logs out.
Skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.flows.conftest import DonjonServer, start_donjon, stop_donjon, store_env  # noqa: F401
from tests.plugins.login.conftest import PASSWORD, SmtpSink, smtp_sink  # noqa: F401

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def login_server(
    tmp_path: Path,
    store_env: dict[str, str],  # noqa: F811
    smtp_sink: SmtpSink,  # noqa: F811
) -> Iterator[DonjonServer]:
    env = {
        "DONJON_PLUGINS_LOGIN_SMTPCONFIGURATION_HOST": f"{smtp_sink.host}:{smtp_sink.port}",
        "DONJON_PLUGINS_LOGIN_SMTPCONFIGURATION_TLS": "false",
        "DONJON_PLUGINS_LOGIN_SMTPCONFIGURATION_FROM": "login@donjon.test",
        "DONJON_PLUGINS_LOGIN_SMTPCONFIGURATION_FROMNAME": "Donjon Login",
    }
    server = start_donjon(tmp_path, {**store_env, **env})
    try:
        yield server
    finally:
        stop_donjon(server)


@pytest.fixture
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context()
            tab = context.new_page()
            tab.set_default_timeout(15_000)
            yield tab
        finally:
            browser.close()


def add_user(server: DonjonServer, username: str, email: str) -> str:
    response = httpx.post(
        f"{server.url}/zitadel.user.v2.UserService/AddHumanUser",
        headers={"authorization": f"Bearer {server.pat}"},
        json={
            "username": username,
            "profile": {"givenName": username.title(), "familyName": "Browser"},
            "email": {"email": email, "isVerified": True},
            "password": {"password": PASSWORD},
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["userId"])


def sign_in(page: Any, url: str, login_name: str, password: str) -> None:
    page.goto(f"{url}/ui/login/login?new=1")
    page.get_by_label("Login name").fill(login_name)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    assert page.locator("#signedOut").inner_text() == "You are signed out."


def test_log_in_register_reset_a_password_and_log_out(
    login_server: DonjonServer,
    smtp_sink: SmtpSink,  # noqa: F811
    page: Any,
) -> None:
    url = login_server.url
    add_user(login_server, "alice", "alice@example.com")

    # Log in, then out.
    sign_in(page, url, "alice", PASSWORD)
    assert page.locator("h1").inner_text() == "Signed in"
    assert page.locator("#loginName").inner_text().startswith("alice")
    sign_out(page)

    # A wrong password says so.
    sign_in(page, url, "alice", "Not-the-passw0rd")
    assert page.locator("#error").inner_text() == "The password is wrong."

    # Self-registration signs the new user in.
    page.goto(f"{url}/ui/login/register")
    page.get_by_label("First name").fill("Rita")
    page.get_by_label("Last name").fill("Browser")
    page.get_by_label("Email", exact=True).fill("rita@example.com")
    page.locator("#username").fill("rita")
    page.locator("#password").fill(PASSWORD)
    page.locator("#passwordConfirm").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    assert page.locator("h1").inner_text() == "Signed in"
    assert page.locator("#displayName").inner_text() == "Rita Browser"
    sign_out(page)

    # Password reset through the emailed link.
    page.goto(f"{url}/ui/login/login?new=1")
    page.get_by_label("Login name").fill("alice")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("button", name="Send the code").click()
    assert page.locator("#sent").is_visible()
    mail = smtp_sink.wait_sync()
    assert mail["To"] == "alice@example.com"
    body = mail.get_payload(decode=True).decode()
    link = re.search(r"(http://\S+/ui/login/password/set\?\S+)", body)
    assert link, body
    page.goto(link.group(1))
    new_password = "N3w-Browser-Passw0rd!"
    page.locator("#password").fill(new_password)
    page.locator("#passwordConfirm").fill(new_password)
    page.get_by_role("button", name="Set the password").click()
    assert page.locator("h1").inner_text() == "Signed in"
    sign_out(page)

    # The new password works, the old one no longer does.
    sign_in(page, url, "alice", PASSWORD)
    assert page.locator("#error").inner_text() == "The password is wrong."
    sign_in(page, url, "alice", new_password)
    assert page.locator("h1").inner_text() == "Signed in"
    sign_out(page)
