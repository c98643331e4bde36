"""The hosted login in a real browser: headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright) against a real donjon process, mail caught by a local SMTP sink.

Logs in, self-registers (and verifies the email through the mailed link), resets a
password through the emailed link, logs out; and the OIDC code flow from
/oauth/v2/authorize through the pages back to the client.
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

from tests.conftest import require_tool
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
    missing = not Path(CHROMIUM).exists() and not shutil.which("chromium")
    require_tool("needs Debian's chromium (apt-get install chromium)" if missing else None)
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


def management(server: DonjonServer, service: str, method: str, body: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{server.url}/zitadel.{service}/{method}",
        headers={"authorization": f"Bearer {server.pat}"},
        json=body,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


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
    welcome = smtp_sink.wait_sync(1)
    assert welcome["To"] == "rita@example.com"
    verify = re.search(
        r"(http://\S+/ui/login/email/verify\?\S+)", welcome.get_payload(decode=True).decode()
    )
    assert verify
    page.goto(verify.group(1))
    page.get_by_role("button", name="Verify").click()
    assert page.locator("h1").inner_text() == "Email verified"

    # Password reset through the emailed link.
    page.goto(f"{url}/ui/login/login?new=1")
    page.get_by_label("Login name").fill("alice")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("button", name="Send the code").click()
    assert page.locator("#sent").is_visible()
    mail = smtp_sink.wait_sync(2)
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


def test_the_oidc_code_flow_through_the_login_pages(
    login_server: DonjonServer,
    page: Any,
) -> None:
    """authorize -> the login pages -> back to the client's redirect URI with a code;
    then end_session without a hint: the login asks, signs out, back to the client."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    url = login_server.url
    add_user(login_server, "alice", "alice@example.com")
    project_id = management(
        login_server, "project.v2.ProjectService", "CreateProject", {"name": "Shop"}
    )["projectId"]
    app = management(
        login_server,
        "application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "web",
            "oidcConfiguration": {
                "redirectUris": ["https://app.example.com/callback"],
                "postLogoutRedirectUris": ["https://app.example.com/bye"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                "applicationType": "OIDC_APP_TYPE_WEB",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
            },
        },
    )
    client_id = app["oidcConfiguration"]["clientId"]
    landed: list[str] = []

    def client_callback(route: Any) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>client</h1>")

    page.route("https://app.example.com/**", client_callback)
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": "https://app.example.com/callback",
            "response_type": "code",
            "scope": "openid profile",
            "state": "browser-state",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{url}/oauth/v2/authorize?{query}")
    assert "/ui/login/login" in page.url
    assert page.locator("#appName").inner_text() == "web"
    page.get_by_label("Login name").fill("alice")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("https://app.example.com/**")

    assert landed, page.url
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert params["code"] and params["state"] == "browser-state"

    logout = urlencode(
        {
            "client_id": client_id,
            "post_logout_redirect_uri": "https://app.example.com/bye",
            "state": "bye-state",
        }
    )
    page.goto(f"{url}/oidc/v1/end_session?{logout}")
    assert "/ui/login/logout" in page.url
    assert page.locator("h1").inner_text() == "Sign out"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("https://app.example.com/bye**")
    assert landed[-1] == "https://app.example.com/bye?state=bye-state"
    page.goto(f"{url}/ui/login/logout")
    assert page.locator("#signedOut").inner_text() == "You are signed out."


def test_the_browser_shows_the_branding_logo_and_colours(
    login_server: DonjonServer, page: Any
) -> None:
    """A logo uploaded through the assets endpoint loads in Chromium; the light and dark
    colours of the label policy reach the page's computed styles."""
    from tests.api.test_settings_branding import png

    url = login_server.url
    management(
        login_server,
        "settings.v2.SettingsService",
        "SetBrandingSettings",
        {
            "ctx": {"instance": True},
            "lightTheme": {"primaryColor": "#102030", "backgroundColor": "#fafafa"},
            "darkTheme": {"backgroundColor": "#203040"},
        },
    )
    image = png(width=40, height=20)
    uploaded = httpx.post(
        f"{url}/assets/v1/instance/policy/label/logo",
        headers={"authorization": f"Bearer {login_server.pat}"},
        files={"file": ("logo.png", image, "image/png")},
        timeout=10,
    )
    assert uploaded.status_code == 200, uploaded.text

    page.goto(f"{url}/ui/login/login")
    logo = page.locator("#logo")
    logo.wait_for()
    page.wait_for_function("document.getElementById('logo').complete")
    assert page.evaluate("document.getElementById('logo').naturalWidth") == 40
    button = page.get_by_role("button", name="Next")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(16, 32, 48)"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 250, 250)"
    page.emulate_media(color_scheme="dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(32, 48, 64)"
