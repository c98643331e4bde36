"""The hosted login as the OIDC plugin's login: /oauth/v2/authorize sends the browser
to /ui/login/login?authRequest=…, the pages finish the auth request, and the browser
goes back to the client with a code (or an error)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest

from tests.plugins.login.conftest import PASSWORD, Browser, add_user, hidden
from tests.plugins.oidc.login_support import REDIRECT, oidc_app, pkce, query_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def authorize(browser: Browser, client_id: str, **params: str):  # type: ignore[no-untyped-def]
    _verifier, challenge = pkce()
    query = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid profile",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    first = await browser.client.get("/oauth/v2/authorize", params=query)
    assert first.status_code == 302, first.text
    location = first.headers["location"]
    assert "/ui/login/login?authRequest=" in location
    return await browser.get(location[location.index("/ui/") :])


async def test_the_code_flow_logs_in_through_the_pages_and_returns_a_code(api, browser) -> None:
    user_id = await add_user(api, "alice")
    app = await oidc_app(api)
    verifier, challenge = pkce()

    page = await authorize(browser, app.client_id, code_challenge=challenge)
    assert page.status_code == 200 and 'name="authRequest"' in page.text
    password = await browser.submit("/ui/login/login", {"loginName": "alice", **_auth(page)})
    assert 'name="authRequest"' in password.text
    back = await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(password, "sessionId"), "password": PASSWORD, **_auth(password)},
        follow=False,
    )

    assert back.status_code == 303, back.text
    assert back.headers["location"].startswith(REDIRECT + "?")
    params = query_of(back.headers["location"])
    assert params["code"] and params["state"] == "st-1"
    assert params["iss"].startswith("http://localhost")
    # The client redeems the code (with the PKCE verifier) for tokens naming alice.
    tokens = await api.client.post(
        "/oauth/v2/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=app.basic(),
    )
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id and claims["nonce"] == "n-1"
    assert "pwd" in claims.get("amr", [])


async def test_prompt_select_account_offers_the_browsers_account(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    page = await authorize(browser, app.client_id)
    password = await browser.submit("/ui/login/login", {"loginName": "alice", **_auth(page)})
    await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(password, "sessionId"), "password": PASSWORD, **_auth(password)},
        follow=False,
    )

    accounts = await authorize(browser, app.client_id, prompt="select_account")
    assert "/ui/login/accounts" in str(accounts.url) and "Alice" in accounts.text
    back = await browser.submit(
        "/ui/login/accounts",
        {"sessionId": hidden(accounts, "sessionId"), **_auth(accounts)},
        follow=False,
    )

    assert back.status_code == 303
    assert query_of(back.headers["location"])["code"]


async def test_prompt_login_asks_again(api, browser) -> None:
    await add_user(api, "alice")
    app = await oidc_app(api)
    page = await authorize(browser, app.client_id)
    password = await browser.submit("/ui/login/login", {"loginName": "alice", **_auth(page)})
    await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(password, "sessionId"), "password": PASSWORD, **_auth(password)},
        follow=False,
    )

    again = await authorize(browser, app.client_id, prompt="login")

    assert 'name="loginName"' in again.text


async def test_cancel_returns_access_denied_to_the_client(api, browser) -> None:
    app = await oidc_app(api)
    page = await authorize(browser, app.client_id)

    back = await browser.submit("/ui/login/cancel", _auth(page), follow=False)

    assert back.status_code == 303
    params = query_of(back.headers["location"])
    assert params["error"] == "access_denied" and params["state"] == "st-1"


async def test_registration_goes_to_the_org_the_scope_names(api, browser) -> None:
    org = await api.ok("org", "AddOrganization", {"name": "Other Org"})
    other = org["organizationId"]
    app = await oidc_app(api)
    page = await authorize(browser, app.client_id, scope=f"openid urn:zitadel:iam:org:id:{other}")
    assert "Other Org" in page.text  # branding: the org's name

    form = await browser.get("/ui/login/register?" + "authRequest=" + _auth(page)["authRequest"])
    back = await browser.submit(
        "/ui/login/register",
        {
            "givenName": "Olga",
            "familyName": "Other",
            "email": "olga@example.com",
            "username": "olga",
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            **_auth(form),
        },
        follow=False,
    )

    assert back.status_code == 303 and query_of(back.headers["location"])["code"]
    users = await api.ok("user", "ListUsers", {})
    olga = next(u for u in users["result"] if u.get("username") == "olga")
    assert olga["details"]["resourceOwner"] == other


async def test_an_unknown_auth_request_is_a_plain_login(api, browser) -> None:
    await add_user(api, "alice")
    await browser.get("/ui/login/login?authRequest=nosuch")

    password = await browser.submit("/ui/login/login", {"loginName": "alice"})
    done = await browser.submit(
        "/ui/login/password", {"sessionId": hidden(password, "sessionId"), "password": PASSWORD}
    )

    assert "Signed in" in done.text


def _auth(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"authRequest": hidden(page, "authRequest")}


async def test_the_login_hint_prefills_the_login_name(api, browser) -> None:
    app = await oidc_app(api)

    page = await authorize(browser, app.client_id, login_hint="alice@example.com")

    assert 'value="alice@example.com"' in page.text
    assert 'id="appName">web<' in page.text


async def test_with_the_oidc_plugin_disabled_an_auth_request_is_ignored(api, browser) -> None:
    await add_user(api, "alice")
    api.runtime.pm.unregister(name="oidc")

    await browser.get("/ui/login/login?authRequest=123")
    password = await browser.submit("/ui/login/login", {"loginName": "alice"})
    done = await browser.submit(
        "/ui/login/password", {"sessionId": hidden(password, "sessionId"), "password": PASSWORD}
    )

    assert 'name="authRequest"' not in password.text
    assert "Signed in" in done.text
