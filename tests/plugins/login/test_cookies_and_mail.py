"""The login's cookies (sealed sessions, CSRF, Secure) and its mail failures."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from donjon.core.config import ConfigError
from donjon.plugins.login.settings import LoginSettings, SMTPConfiguration
from tests.conftest import make_settings, sqlite_database
from tests.plugins.login.conftest import PASSWORD, Browser, SmtpSink, add_user, hidden

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def signed_in(browser: Browser, login_name: str = "alice"):  # type: ignore[no-untyped-def]
    await browser.get("/ui/login/login?new=1")
    page = await browser.submit("/ui/login/login", {"loginName": login_name})
    return await browser.submit(
        "/ui/login/password", {"sessionId": hidden(page, "sessionId"), "password": PASSWORD}
    )


async def test_the_session_cookie_holds_no_readable_token(api, browser) -> None:
    await add_user(api, "alice")
    page = await signed_in(browser)
    cookie = browser.client.cookies["donjon_login_sessions"]

    assert hidden(page, "sessionId") not in cookie
    # A tampered cookie counts as none: the browser has no session.
    browser.client.cookies.clear()
    browser.client.cookies.set("donjon_login_sessions", cookie)
    assert "/ui/login/accounts" in str((await browser.get("/ui/login/login")).url)
    browser.client.cookies.clear()
    browser.client.cookies.set("donjon_login_sessions", cookie[:-4] + "AAAA")
    again = await browser.get("/ui/login/login")
    assert 'name="loginName"' in again.text
    assert "Choose an account" not in again.text


async def test_a_session_id_in_the_url_is_not_enough(api, browser) -> None:
    await add_user(api, "alice")
    other = Browser(api)
    try:
        page = await signed_in(other)
    finally:
        await other.close()
    session_id = hidden(page, "sessionId")

    signed = await browser.get(f"/ui/login/signedin?sessionId={session_id}", follow=False)
    reset = await browser.get(f"/ui/login/password/reset?sessionId={session_id}", follow=False)

    assert signed.status_code == 303 and reset.status_code == 303


async def test_cookies_are_secure_when_external_secure(api, browser) -> None:
    api.runtime.settings = dataclasses.replace(api.runtime.settings, ExternalSecure=True)

    page = await browser.get("/ui/login/login")

    assert "Secure" in page.headers["set-cookie"]


async def test_login_hint_prefills_nothing_without_an_auth_request(api, browser) -> None:
    page = await browser.get("/ui/login/login?login_hint=mallory")

    assert 'value="mallory"' not in page.text


async def test_an_unreachable_smtp_server_is_reported(api, browser, smtp_sink: SmtpSink) -> None:
    await add_user(api, "alice")
    smtp = dataclasses.replace(
        api.runtime.plugin_settings["login"].SMTPConfiguration, Host="127.0.0.1:1"
    )
    api.runtime.plugin_settings["login"] = LoginSettings(SMTPConfiguration=smtp)
    await browser.get("/ui/login/login")
    page = await browser.submit("/ui/login/login", {"loginName": "alice"})
    session_id = hidden(page, "sessionId")
    await browser.get(f"/ui/login/password/reset?sessionId={session_id}")

    sent = await browser.submit("/ui/login/password/reset", {"sessionId": session_id})

    assert sent.status_code == 502
    assert "The email could not be sent." in sent.text


async def test_without_smtp_the_reset_page_says_email_is_off(api, browser) -> None:
    await add_user(api, "alice")
    api.runtime.plugin_settings["login"] = LoginSettings()
    await browser.get("/ui/login/login")
    page = await browser.submit("/ui/login/login", {"loginName": "alice"})
    session_id = hidden(page, "sessionId")
    await browser.get(f"/ui/login/password/reset?sessionId={session_id}")

    sent = await browser.submit("/ui/login/password/reset", {"sessionId": session_id})

    assert sent.status_code == 503 and "Email is not set up" in sent.text


def test_smtp_configuration_needs_a_sender(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from donjon.core.plugins import get_plugin_manager, plugin_settings

    settings = make_settings(
        sqlite_database(tmp_path / "x.db"),
        Plugins={"login": {"SMTPConfiguration": {"Host": "smtp.example.com:587"}}},
    )
    with pytest.raises(ConfigError) as failure:
        plugin_settings(get_plugin_manager(settings), settings)

    assert "From" in str(failure.value)
    assert SMTPConfiguration(Host="mail.example.com", From="a@b.c").address() == (
        "mail.example.com",
        25,
    )
