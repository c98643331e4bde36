"""The device flow's user pages (RFC 8628 §3.3): `/ui/login/device` takes the code (any
case, with or without its dash; prefilled from `verification_uri_complete`), the login
pages sign the person in, the consent page shows the application, its scopes and the
code, and approves or denies; the device's polling sees the decision. Unknown, expired
and used codes get a clear page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.plugins.login.conftest import PASSWORD, Browser, add_user, hidden
from tests.plugins.oidc.test_device_code import device_app, poll, start

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def sign_in_for_device(browser: Browser, code: str, username: str = "alice"):  # type: ignore[no-untyped-def]
    """Enter the code, the login name and the password: the consent page."""
    await browser.get("/ui/login/device")
    login = await browser.submit("/ui/login/device", {"code": code})
    assert 'name="loginName"' in login.text, login.text
    password = await browser.submit(
        "/ui/login/login", {"loginName": username, "userCode": hidden(login, "userCode")}
    )
    return await browser.submit(
        "/ui/login/password",
        {
            "sessionId": hidden(password, "sessionId"),
            "password": PASSWORD,
            "userCode": hidden(password, "userCode"),
        },
    )


async def test_a_person_approves_a_device_through_the_pages(api, browser) -> None:
    user_id = await add_user(api, "alice")
    app = await device_app(api)
    started = await start(api, app)
    typed = started["user_code"].replace("-", "").lower()  # sloppy typing is fine

    consent = await sign_in_for_device(browser, typed)

    assert "/ui/login/device/consent" in str(consent.url)
    assert 'id="appName">web<' in consent.text
    assert f'id="userCode">{started["user_code"]}<' in consent.text
    assert "See your name and profile" in consent.text and "Stay signed in" in consent.text
    done = await browser.submit(
        "/ui/login/device/consent",
        {
            "decision": "approve",
            "sessionId": hidden(consent, "sessionId"),
            "userCode": hidden(consent, "userCode"),
        },
    )
    assert done.status_code == 200 and "Device connected" in done.text
    tokens = await poll(api, app, started["device_code"])
    assert tokens.status_code == 200, tokens.text
    info = await api.client.get(
        "/oidc/v1/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert info.json()["sub"] == user_id


async def test_verification_uri_complete_prefills_the_code(api, browser) -> None:
    app = await device_app(api)
    started = await start(api, app)

    page = await browser.get(path_of(started["verification_uri_complete"]))

    assert page.status_code == 200
    assert f'value="{started["user_code"]}"' in page.text


async def test_denying_sends_access_denied_to_the_device(api, browser) -> None:
    await add_user(api, "alice")
    app = await device_app(api)
    started = await start(api, app)
    consent = await sign_in_for_device(browser, started["user_code"])

    done = await browser.submit(
        "/ui/login/device/consent",
        {
            "decision": "deny",
            "sessionId": hidden(consent, "sessionId"),
            "userCode": hidden(consent, "userCode"),
        },
    )

    assert "Device denied" in done.text
    r = await poll(api, app, started["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "access_denied"


async def test_a_signed_in_browser_chooses_its_account_then_consents(api, browser) -> None:
    await add_user(api, "alice")
    app = await device_app(api)
    first = await start(api, app)
    consent = await sign_in_for_device(browser, first["user_code"])
    await browser.submit(
        "/ui/login/device/consent",
        {
            "decision": "approve",
            "sessionId": hidden(consent, "sessionId"),
            "userCode": hidden(consent, "userCode"),
        },
    )
    second = await start(api, app)

    await browser.get("/ui/login/device")
    accounts = await browser.submit("/ui/login/device", {"code": second["user_code"]})
    assert "/ui/login/accounts" in str(accounts.url) and "Alice" in accounts.text
    consent = await browser.submit(
        "/ui/login/accounts",
        {"sessionId": hidden(accounts, "sessionId"), "userCode": hidden(accounts, "userCode")},
    )

    assert f'id="userCode">{second["user_code"]}<' in consent.text


async def test_an_unknown_code_is_refused_with_the_form_again(api, browser) -> None:
    await browser.get("/ui/login/device")

    page = await browser.submit("/ui/login/device", {"code": "BCDF-GHJK"})

    assert page.status_code == 400
    assert "This code is not known" in page.text and 'name="code"' in page.text


async def test_an_expired_code_says_so(api, browser) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from donjon.plugins.oidc.device_events import device_auths_table

    app = await device_app(api)
    started = await start(api, app)
    async with api.runtime.db.write() as conn:
        await conn.execute(
            update(device_auths_table).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await browser.get("/ui/login/device")

    page = await browser.submit("/ui/login/device", {"code": started["user_code"]})

    assert page.status_code == 400 and "This code has expired" in page.text


async def test_a_used_code_cannot_be_approved_twice(api, browser) -> None:
    await add_user(api, "alice")
    app = await device_app(api)
    started = await start(api, app)
    consent = await sign_in_for_device(browser, started["user_code"])
    form = {
        "decision": "approve",
        "sessionId": hidden(consent, "sessionId"),
        "userCode": hidden(consent, "userCode"),
    }
    await browser.submit("/ui/login/device/consent", form)
    browser.last = consent  # the same form sent again (back button)

    again = await browser.submit("/ui/login/device/consent", form)

    assert again.status_code == 400 and "This code was already used" in again.text
    await browser.get("/ui/login/device")
    retyped = await browser.submit("/ui/login/device", {"code": started["user_code"]})
    assert "This code was already used" in retyped.text


async def test_consent_needs_a_signed_in_session_of_this_browser(api, browser) -> None:
    app = await device_app(api)
    started = await start(api, app)
    code = started["user_code"]

    page = await browser.get(f"/ui/login/device/consent?userCode={code}&sessionId=123")

    assert 'name="loginName"' in page.text and f'value="{code}"' in page.text
