"""The authorization request's parameters in the hosted login (OIDC Core §3.1.2.1):
`prompt=none|login|select_account|create`, `max_age`, `login_hint`, and single sign-on
with a browser's one signed-in session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.plugins.login.conftest import PASSWORD, Browser, add_user, hidden
from tests.plugins.oidc.login_support import REDIRECT, App, oidc_app, pkce, query_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def authorize(browser: Browser, app: App, **params: str) -> httpx.Response:
    """/oauth/v2/authorize, then the login's first answer (not followed)."""
    _verifier, challenge = pkce()
    query = {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid profile",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    first = await browser.client.get("/oauth/v2/authorize", params=query)
    assert first.status_code == 302, first.text
    location = first.headers["location"]
    return await browser.get(location[location.index("/ui/") :], follow=False)


async def follow(browser: Browser, response: httpx.Response) -> httpx.Response:
    assert response.status_code in (302, 303), response.text
    return await browser.get(response.headers["location"])


async def sign_in(browser: Browser, app: App, username: str) -> str:
    """A full login of `username` (a new session in this browser): the code."""
    page = await authorize(browser, app, prompt="login")
    assert page.status_code == 200 and 'name="loginName"' in page.text, page.text
    password = await browser.submit(
        "/ui/login/login", {"loginName": username, "authRequest": _auth(page)}
    )
    back = await browser.submit(
        "/ui/login/password",
        {
            "sessionId": hidden(password, "sessionId"),
            "password": PASSWORD,
            "authRequest": _auth(password),
        },
        follow=False,
    )
    assert back.status_code == 303 and back.headers["location"].startswith(REDIRECT), back.text
    return query_of(back.headers["location"])["code"]


def _auth(page: httpx.Response) -> str:
    return hidden(page, "authRequest")


def back_to_client(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(REDIRECT + "?"), response.headers["location"]
    return query_of(response.headers["location"])


async def subject_of(api, app: App, code: str) -> str:  # type: ignore[no-untyped-def]
    """The user the code was issued for (read from the auth request the code finished)."""
    from sqlalchemy import select

    from donjon.core.identity import secrets
    from donjon.plugins.oidc.auth_request_events import auth_requests_table

    async with api.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(auth_requests_table.c.user_id).where(
                    auth_requests_table.c.code_digest == secrets.digest(code)
                )
            )
        ).first()
    assert row is not None
    return str(row.user_id)


async def test_prompt_none_without_a_session_returns_login_required(api, browser) -> None:
    app = await oidc_app(api)

    back = await authorize(browser, app, prompt="none")

    params = back_to_client(back)
    assert params["error"] == "login_required" and params["state"] == "st-1"
    assert "code" not in params


async def test_prompt_none_with_a_signed_in_session_returns_a_code_without_a_page(
    api, browser
) -> None:
    alice = await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    back = await authorize(browser, app, prompt="none")

    params = back_to_client(back)
    assert params["code"] and await subject_of(api, app, params["code"]) == alice


async def test_prompt_none_with_several_sessions_needs_account_selection(api, browser) -> None:
    await add_user(api, "alice")
    await add_user(api, "bob")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")
    await sign_in(browser, app, "bob")

    back = await authorize(browser, app, prompt="none")

    assert back_to_client(back)["error"] == "account_selection_required"


async def test_prompt_none_with_a_login_hint_picks_that_users_session(api, browser) -> None:
    await add_user(api, "alice")
    bob = await add_user(api, "bob")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")
    await sign_in(browser, app, "bob")

    back = await authorize(browser, app, prompt="none", login_hint="bob")

    assert await subject_of(api, app, back_to_client(back)["code"]) == bob
    nobody = await authorize(browser, app, prompt="none", login_hint="carol")
    assert back_to_client(nobody)["error"] == "login_required"


async def test_prompt_none_with_a_too_old_authentication_returns_login_required(
    api, browser
) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    back = await authorize(browser, app, prompt="none", max_age="0")

    assert back_to_client(back)["error"] == "login_required"


async def test_prompt_none_when_the_user_may_not_use_the_app_is_interaction_required(
    api, browser
) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")
    other_org = (await api.ok("org", "AddOrganization", {"name": "Elsewhere"}))["organizationId"]

    back = await authorize(
        browser, app, prompt="none", scope=f"openid urn:zitadel:iam:org:id:{other_org}"
    )

    params = back_to_client(back)
    assert params["error"] == "interaction_required" and params["error_description"]


async def test_one_signed_in_session_signs_in_at_once(api, browser) -> None:
    alice = await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    back = await authorize(browser, app)

    assert await subject_of(api, app, back_to_client(back)["code"]) == alice


async def test_several_sessions_go_to_account_selection(api, browser) -> None:
    await add_user(api, "alice")
    await add_user(api, "bob")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")
    await sign_in(browser, app, "bob")

    page = await follow(browser, await authorize(browser, app))

    assert "/ui/login/accounts" in str(page.url)
    assert "Alice" in page.text and "Bob" in page.text


async def test_prompt_select_account_shows_the_accounts_even_for_one(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    page = await follow(browser, await authorize(browser, app, prompt="select_account"))

    assert "/ui/login/accounts" in str(page.url) and "Alice" in page.text
    back = await browser.submit(
        "/ui/login/accounts",
        {"sessionId": hidden(page, "sessionId"), "authRequest": _auth(page)},
        follow=False,
    )
    assert back_to_client(back)["code"]


async def test_prompt_login_asks_the_chosen_account_for_its_password_again(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    page = await authorize(browser, app, prompt="login")
    assert page.status_code == 200 and 'name="loginName"' in page.text
    accounts = await browser.get("/ui/login/accounts?authRequest=" + _auth(page))
    again = await browser.submit(
        "/ui/login/accounts",
        {"sessionId": hidden(accounts, "sessionId"), "authRequest": _auth(accounts)},
    )

    assert "/ui/login/password" in str(again.url) and 'name="password"' in again.text
    back = await browser.submit(
        "/ui/login/password",
        {
            "sessionId": hidden(again, "sessionId"),
            "password": PASSWORD,
            "authRequest": _auth(again),
        },
        follow=False,
    )
    assert back_to_client(back)["code"]


async def test_max_age_reauthenticates_an_old_session(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    page = await follow(browser, await authorize(browser, app, max_age="0"))

    assert "/ui/login/password" in str(page.url) and "alice" in page.text
    back = await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(page, "sessionId"), "password": PASSWORD, "authRequest": _auth(page)},
        follow=False,
    )
    assert back_to_client(back)["code"]


async def test_max_age_lets_a_recent_authentication_through(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    back = await authorize(browser, app, max_age="3600")

    assert back_to_client(back)["code"]


async def test_login_hint_chooses_that_users_session(api, browser) -> None:
    alice = await add_user(api, "alice")
    await add_user(api, "bob")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")
    await sign_in(browser, app, "bob")

    back = await authorize(browser, app, login_hint="alice")

    assert await subject_of(api, app, back_to_client(back)["code"]) == alice


async def test_login_hint_without_a_session_prefills_the_login_name(api, browser) -> None:
    await add_user(api, "alice")
    await add_user(api, "bob")
    app = await oidc_app(api)
    await sign_in(browser, app, "alice")

    page = await authorize(browser, app, login_hint="bob")

    assert page.status_code == 200 and 'name="loginName" value="bob"' in page.text


async def test_prompt_create_opens_the_registration(api, browser) -> None:
    app = await oidc_app(api)

    page = await follow(browser, await authorize(browser, app, prompt="create"))

    assert "/ui/login/register" in str(page.url) and 'name="givenName"' in page.text
    assert _auth(page)


async def test_prompt_create_without_registration_allowed_shows_the_login(api, browser) -> None:
    await api.ok(
        "settings", "SetLoginSettings", {"ctx": {"instance": True}, "allowRegister": False}
    )
    app = await oidc_app(api)

    page = await authorize(browser, app, prompt="create")

    assert page.status_code == 200 and 'name="loginName"' in page.text
