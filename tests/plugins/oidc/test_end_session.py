"""RP-initiated logout: the login session ends, refresh families from it are revoked,
and only registered post-logout redirect URIs are followed."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.login_support import (
    REDIRECT,
    SESSIONS,
    App,
    add_person,
    oidc_app,
    pkce,
    query_of,
    session,
    start,
)
from tests.plugins.oidc.login_support import callback as finish
from tests.plugins.oidc.support import token

pytestmark = pytest.mark.anyio
BYE = "https://app.example.com/bye"
END = "/oidc/v1/end_session"


async def login(api: Api, app: App) -> tuple[dict[str, Any], dict[str, Any]]:
    """(session, token response) of a code flow with offline_access."""
    verifier, challenge = pkce()
    auth_request_id = await start(
        api,
        app,
        scope="openid offline_access",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    s = await session(api)
    code = query_of(await finish(api, auth_request_id, s))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = await token(api, form, auth=app.basic())
    assert r.status_code == 200, r.text
    return s, r.json()


async def test_logout_ends_the_session_and_redirects_with_state(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    s, tokens = await login(api, app)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sid"] == s["sessionId"]
    r = await api.client.get(
        END,
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": BYE,
            "state": "bye-1",
        },
    )
    assert r.status_code == 302 and r.headers["location"] == BYE + "?state=bye-1"
    # The session is gone, and so is the refresh token family.
    status, _code, _m = await api.error(SESSIONS, "GetSession", {"sessionId": s["sessionId"]})
    assert status == 404
    refresh = await token(
        api,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=app.basic(),
    )
    assert refresh.status_code == 400
    # Logging out again is harmless: the hosted login's signed-out page.
    again = await api.client.post(END, data={"id_token_hint": tokens["id_token"]})
    assert again.status_code == 302
    assert again.headers["location"].endswith("/ui/login/logout/done")
    page = await api.client.get("/ui/login/logout/done")
    assert "You are signed out" in page.text


async def test_post_logout_redirect_uri_must_be_registered_for_the_client(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    _s, tokens = await login(api, app)
    for params in (
        {"post_logout_redirect_uri": BYE},  # no client
        {"client_id": app.client_id, "post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE + "/x"},
        {"id_token_hint": "not.a.jwt"},
        {"id_token_hint": tokens["id_token"], "client_id": "someone-else"},
    ):
        r = await api.client.get(END, params=params)
        assert r.status_code == 400 and "location" not in r.headers, params
    # Without a hint the hosted login asks which session to end, then redirects.
    r = await api.client.get(
        END, params={"client_id": app.client_id, "post_logout_redirect_uri": BYE}
    )
    assert r.status_code == 302 and "/ui/login/logout?" in r.headers["location"]
    assert query_of(r.headers["location"])["post_logout_redirect_uri"] == BYE


async def test_a_forged_hint_is_refused(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    _s, tokens = await login(api, app)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": "x"})
    r = await api.client.get(END, params={"id_token_hint": forged, "post_logout_redirect_uri": BYE})
    assert r.status_code == 400
