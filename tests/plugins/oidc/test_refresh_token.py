"""Refresh tokens: rotation on every use, reuse revokes the family, idle and absolute
expiry, narrowing scopes, only for the client that got them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.tokens.refresh import refresh_tokens_table
from tests.api.conftest import Api
from tests.plugins.oidc.login_support import REDIRECT, App, add_person, code_for, oidc_app
from tests.plugins.oidc.support import token

pytestmark = pytest.mark.anyio


async def logged_in(
    api: Api, app: App, scope: str = "openid profile offline_access"
) -> dict[str, Any]:
    code, verifier = await code_for(api, app, scope=scope)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = await token(api, form, auth=app.basic())
    assert r.status_code == 200, r.text
    return r.json()


async def refresh(api: Api, app: App, refresh_token: str, **extra: str) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await token(api, form, auth=app.basic())


async def userinfo_status(api: Api, access_token: str) -> int:
    r = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {access_token}"}
    )
    return r.status_code


async def test_each_use_rotates_the_refresh_token(api: Api) -> None:
    app = await oidc_app(api)
    alice = await add_person(api)
    first = await logged_in(api, app)
    r = await refresh(api, app, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "openid profile offline_access"
    import jwt

    old = jwt.decode(first["id_token"], options={"verify_signature": False})
    new = jwt.decode(second["id_token"], options={"verify_signature": False})
    assert new["sub"] == alice and new["auth_time"] == old["auth_time"] and "nonce" not in new
    assert await userinfo_status(api, second["access_token"]) == 200
    third = await refresh(api, app, second["refresh_token"])
    assert third.status_code == 200
    # Only digests are stored.
    async with api.runtime.db.read() as conn:
        digests = [r.digest for r in await conn.execute(select(refresh_tokens_table.c.digest))]
    assert first["refresh_token"] not in digests and len(digests[0]) == 64


async def test_reusing_an_old_refresh_token_revokes_the_family(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    first = await logged_in(api, app)
    second = (await refresh(api, app, first["refresh_token"])).json()
    reused = await refresh(api, app, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # The legitimate client's latest tokens are gone too.
    assert (await refresh(api, app, second["refresh_token"])).status_code == 400
    assert await userinfo_status(api, second["access_token"]) == 401
    assert await userinfo_status(api, first["access_token"]) == 401


async def test_a_refresh_token_is_for_its_client_only(api: Api) -> None:
    app = await oidc_app(api)
    other = await oidc_app(api)
    await add_person(api)
    first = await logged_in(api, app)
    r = await refresh(api, other, first["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert (await refresh(api, app, first["refresh_token"])).status_code == 200


async def test_scopes_may_narrow_but_not_widen(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    first = await logged_in(api, app)
    wider = await refresh(api, app, first["refresh_token"], scope="openid email")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrow = await refresh(api, app, first["refresh_token"], scope="openid offline_access")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "openid offline_access"


async def test_no_refresh_token_without_offline_access_or_the_grant(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    assert "refresh_token" not in await logged_in(api, app, "openid")
    no_grant = await oidc_app(api, grantTypes=["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"])
    body = await logged_in(api, no_grant, "openid offline_access")
    assert "refresh_token" not in body and body["scope"] == "openid"


@pytest.mark.parametrize("setting", ["RefreshTokenIdleLifetime", "RefreshTokenLifetime"])
async def test_idle_and_absolute_expiry(api: Api, setting: str) -> None:
    settings = provider_of(api.runtime).settings
    saved = getattr(settings, setting)
    app = await oidc_app(api)
    await add_person(api)
    try:
        setattr(settings, setting, timedelta(seconds=-1))
        first = await logged_in(api, app)
    finally:
        setattr(settings, setting, saved)
    r = await refresh(api, app, first["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_a_deactivated_user_cannot_refresh(api: Api) -> None:
    app = await oidc_app(api)
    alice = await add_person(api)
    first = await logged_in(api, app)
    await api.ok("user", "DeactivateUser", {"userId": alice})
    assert (await refresh(api, app, first["refresh_token"])).status_code == 400


async def test_revoking_a_refresh_token_revokes_the_family(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    first = await logged_in(api, app)
    other = await oidc_app(api)
    r = await api.client.post(
        "/oauth/v2/revoke", data={"token": first["refresh_token"]}, auth=other.basic()
    )
    assert r.status_code == 400
    r = await api.client.post(
        "/oauth/v2/revoke",
        data={"token": first["refresh_token"], "token_type_hint": "refresh_token"},
        auth=app.basic(),
    )
    assert r.status_code == 200
    assert (await refresh(api, app, first["refresh_token"])).status_code == 400
    assert await userinfo_status(api, first["access_token"]) == 401


async def test_a_refresh_token_of_another_instance_is_unknown(api: Api, tmp_path: Any) -> None:
    from tests.plugins.oidc.support import second_instance

    app = await oidc_app(api)
    await add_person(api)
    first = await logged_in(api, app)
    other = await second_instance(api, tmp_path)
    other_app = await oidc_app(other)
    r = await other.client.post(
        "/oauth/v2/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=other_app.basic(),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert (await refresh(api, app, first["refresh_token"])).status_code == 200


async def test_introspection_shows_a_refresh_token_to_its_client_only(api: Api) -> None:
    app = await oidc_app(api)
    alice = await add_person(api)
    other = await oidc_app(api)
    first = await logged_in(api, app)

    async def introspect(who: App, value: str) -> dict[str, Any]:
        r = await api.client.post("/oauth/v2/introspect", data={"token": value}, auth=who.basic())
        assert r.status_code == 200, r.text
        return r.json()

    got = await introspect(app, first["refresh_token"])
    assert got["active"] is True and got["token_type"] == "refresh_token"
    assert got["sub"] == alice and got["client_id"] == app.client_id
    assert got["scope"] == "openid profile offline_access"
    assert await introspect(other, first["refresh_token"]) == {"active": False}
    await refresh(api, app, first["refresh_token"])
    assert await introspect(app, first["refresh_token"]) == {"active": False}
