"""RP-initiated logout through the hosted login: /oidc/v1/end_session without an
id_token_hint hands the browser to /ui/login/logout, which asks which of the browser's
sessions to end (ending their refresh tokens too) and then goes to the registered
post_logout_redirect_uri with state, or to the signed-out page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.plugins.login.conftest import PASSWORD, Browser, add_user, hidden
from tests.plugins.oidc.login_support import REDIRECT, SESSIONS, App, oidc_app, pkce, query_of

pytestmark = pytest.mark.anyio
BYE = "https://app.example.com/bye"
END = "/oidc/v1/end_session"


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def sign_in(api, browser: Browser, app: App, username: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Log `username` in through the pages (a new session of this browser): the tokens."""
    verifier, challenge = pkce()
    first = await browser.client.get(
        "/oauth/v2/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid offline_access",
            "prompt": "login",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    location = first.headers["location"]
    page = await browser.get(location[location.index("/ui/") :])
    auth = {"authRequest": hidden(page, "authRequest")}
    password = await browser.submit("/ui/login/login", {"loginName": username, **auth})
    back = await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(password, "sessionId"), "password": PASSWORD, **auth},
        follow=False,
    )
    code = query_of(back.headers["location"])["code"]
    tokens = await api.client.post(
        "/oauth/v2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=app.basic(),
    )
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def end_session(browser: Browser, **params: str) -> httpx.Response:
    """Call end_session as the browser; the login page it leads to (not followed further)."""
    first = await browser.client.get(END, params=params)
    assert first.status_code == 302, first.text
    return await browser.get(local(first.headers["location"]), follow=False)


async def refreshes(api, app: App, tokens: dict[str, Any]) -> bool:  # type: ignore[no-untyped-def]
    r = await api.client.post(
        "/oauth/v2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=app.basic(),
    )
    return r.status_code == 200


async def session_exists(api, session_id: str) -> bool:  # type: ignore[no-untyped-def]
    status, _ = await api.call(SESSIONS, "GetSession", {"sessionId": session_id})
    return status == 200


async def test_without_a_hint_the_person_confirms_and_returns_to_the_client(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    tokens = await sign_in(api, browser, app, "alice")

    page = await end_session(
        browser, client_id=app.client_id, post_logout_redirect_uri=BYE, state="bye-1"
    )
    assert page.status_code == 200 and "Sign out of this account?" in page.text
    assert "Alice" in page.text
    assert hidden(page, "post_logout_redirect_uri") == BYE and hidden(page, "state") == "bye-1"
    done = await browser.submit(
        "/ui/login/logout",
        {"client_id": app.client_id, "post_logout_redirect_uri": BYE, "state": "bye-1"},
        follow=False,
    )

    assert done.status_code == 303 and done.headers["location"] == BYE + "?state=bye-1"
    assert not await refreshes(api, app, tokens)
    assert "donjon_login_sessions" in done.headers.get("set-cookie", "")


async def test_with_several_sessions_the_person_chooses_which_to_end(api, browser) -> None:
    await add_user(api, "alice")
    await add_user(api, "bob")
    app = await oidc_app(api)
    alice_tokens = await sign_in(api, browser, app, "alice")
    bob_tokens = await sign_in(api, browser, app, "bob")

    page = await end_session(
        browser, client_id=app.client_id, post_logout_redirect_uri=BYE, state="s-2"
    )
    assert "Which account do you want to sign out of?" in page.text
    assert "Alice" in page.text and "Bob" in page.text
    bob_session = next(
        value for value, name in _account_buttons(page.text) if name.strip().startswith("Bob")
    )
    done = await browser.submit(
        "/ui/login/logout",
        {
            "sessionId": bob_session,
            "client_id": app.client_id,
            "post_logout_redirect_uri": BYE,
            "state": "s-2",
        },
        follow=False,
    )

    assert done.headers["location"] == BYE + "?state=s-2"
    assert not await session_exists(api, bob_session)
    assert not await refreshes(api, app, bob_tokens)
    assert await refreshes(api, app, alice_tokens)
    # Alice is still signed in in this browser.
    again = await browser.get("/ui/login/logout")
    assert "Sign out of this account?" in again.text and "Alice" in again.text


def _account_buttons(html: str) -> list[tuple[str, str]]:
    import re

    return re.findall(r'name="sessionId" value="([^"]+)">\s*([^<]+)', html)


async def test_a_browser_without_sessions_returns_to_the_client_at_once(api, browser) -> None:
    app = await oidc_app(api)

    back = await end_session(
        browser, client_id=app.client_id, post_logout_redirect_uri=BYE, state="s-3"
    )

    assert back.status_code == 303 and back.headers["location"] == BYE + "?state=s-3"


async def test_a_made_up_logout_link_never_redirects_to_an_unregistered_uri(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    await sign_in(api, browser, app, "alice")
    evil = "https://evil.example/"

    page = await browser.get(
        f"/ui/login/logout?client_id={app.client_id}&post_logout_redirect_uri={evil}"
    )
    done = await browser.submit(
        "/ui/login/logout",
        {"client_id": app.client_id, "post_logout_redirect_uri": evil},
        follow=False,
    )

    assert page.status_code == 200
    assert done.status_code == 200 and 'id="signedOut"' in done.text
    assert "location" not in done.headers


async def test_with_a_hint_the_login_ends_and_the_signed_out_page_shows(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    tokens = await sign_in(api, browser, app, "alice")

    first = await browser.client.get(END, params={"id_token_hint": tokens["id_token"]})

    assert first.status_code == 302
    assert urlsplit(first.headers["location"]).path == "/ui/login/logout/done"
    page = await browser.get(local(first.headers["location"]))
    assert 'id="signedOut"' in page.text and "--primary" in page.text
    assert not await refreshes(api, app, tokens)


async def test_the_logout_form_needs_the_csrf_token(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    tokens = await sign_in(api, browser, app, "alice")
    await end_session(browser, client_id=app.client_id, post_logout_redirect_uri=BYE)

    refused = await browser.submit(
        "/ui/login/logout",
        {"client_id": app.client_id, "post_logout_redirect_uri": BYE},
        csrf="forged",
        follow=False,
    )

    assert refused.status_code == 403
    assert await refreshes(api, app, tokens)
