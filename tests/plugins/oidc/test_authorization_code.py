"""The authorization code grant with PKCE after a custom login (SessionService +
OIDCService.CreateCallback): tokens, ID token claims, and each RFC 9700 rule."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import timedelta
from typing import Any

import anyio
import jwt
import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.login_support import (
    REDIRECT,
    App,
    add_person,
    callback,
    code_for,
    oidc_app,
    pkce,
    query_of,
    session,
    start,
)
from tests.plugins.oidc.support import issuer, second_instance, token

pytestmark = pytest.mark.anyio


def exchange(app: App, code: str, verifier: str | None, **extra: str) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


async def jwks(api: Api) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict((await api.client.get("/oauth/v2/keys")).json())


async def verify_id_token(api: Api, id_token: str, audience: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(id_token)
    key = (await jwks(api))[header["kid"]]
    return jwt.decode(id_token, key.key, algorithms=[header["alg"]], audience=audience)


async def test_code_flow_with_pkce_gives_access_id_and_refresh_tokens(api: Api) -> None:
    app = await oidc_app(api, idTokenUserinfoAssertion=True)
    alice = await add_person(api)
    code, verifier = await code_for(api, app, scope="openid profile email offline_access")
    r = await token(api, exchange(app, code, verifier), auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert body["refresh_token"] and body["access_token"]
    claims = await verify_id_token(api, body["id_token"], app.client_id)
    assert claims["iss"] == issuer(api) and claims["sub"] == alice
    assert app.client_id in claims["aud"] and app.project_id in claims["aud"]
    assert claims["azp"] == app.client_id and claims["nonce"] == "n-1"
    assert claims["amr"] == ["pwd"] and claims["acr"] == "0" and claims["sid"]
    assert abs(claims["auth_time"] - time.time()) < 60
    assert claims["email"] == "alice@example.com" and claims["given_name"] == "Alice"
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "ES256"
    half = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(half).rstrip(b"=").decode()
    # The access token works at userinfo.
    info = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["sub"] == alice
    assert info.json()["email"] == "alice@example.com"


async def test_without_userinfo_assertion_the_id_token_has_no_profile(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app, scope="openid profile")
    body = (await token(api, exchange(app, code, verifier), auth=app.basic())).json()
    claims = await verify_id_token(api, body["id_token"], app.client_id)
    assert "given_name" not in claims and "refresh_token" not in body
    assert body["scope"] == "openid profile"


async def test_role_claims_per_app_settings_and_jwt_access_tokens(api: Api) -> None:
    project_id = (
        await api.ok("project", "CreateProject", {"name": "Roles", "projectRoleAssertion": True})
    )["projectId"]
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "reader", "displayName": "R"},
    )
    app = await oidc_app(
        api,
        project_id,
        idTokenRoleAssertion=True,
        accessTokenRoleAssertion=True,
        accessTokenType="OIDC_TOKEN_TYPE_JWT",
    )
    alice = await add_person(api)
    await api.ok(
        "authorization",
        "CreateAuthorization",
        {"userId": alice, "projectId": project_id, "roleKeys": ["reader"]},
    )
    code, verifier = await code_for(api, app, scope="openid")
    body = (await token(api, exchange(app, code, verifier), auth=app.basic())).json()
    claims = await verify_id_token(api, body["id_token"], app.client_id)
    assert list(claims["urn:zitadel:iam:org:project:roles"]) == ["reader"]
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    assert list(access["urn:zitadel:iam:org:project:roles"]) == ["reader"]
    assert access["sub"] == alice and access["client_id"] == app.client_id
    # Userinfo has the app project's roles with the roles scope.
    code, verifier = await code_for(api, app, scope="openid urn:zitadel:iam:org:project:roles")
    body = (await token(api, exchange(app, code, verifier), auth=app.basic())).json()
    info = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert list(info.json()["urn:zitadel:iam:org:project:roles"]) == ["reader"]


async def test_a_public_client_exchanges_with_its_client_id_and_the_verifier(api: Api) -> None:
    app = await oidc_app(
        api,
        applicationType="OIDC_APP_TYPE_USER_AGENT",
        authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
    )
    await add_person(api)
    code, verifier = await code_for(api, app)
    r = await token(api, exchange(app, code, verifier, client_id=app.client_id))
    assert r.status_code == 200, r.text


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app, scope="openid offline_access")
    first = (await token(api, exchange(app, code, verifier), auth=app.basic())).json()
    again = await token(api, exchange(app, code, verifier), auth=app.basic())
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    info = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {first['access_token']}"}
    )
    assert info.status_code == 401
    refresh = await token(
        api,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=app.basic(),
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "change",
    [
        {"code_verifier": "x" * 43},
        {"code_verifier": ""},
        {"redirect_uri": "https://app.example.com/other"},
        {"redirect_uri": ""},
        {"code": "not-a-code"},
    ],
)
async def test_wrong_verifier_redirect_uri_or_code_is_invalid_grant(
    api: Api, change: dict[str, str]
) -> None:
    app = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app)
    form = {**exchange(app, code, verifier), **change}
    form = {k: v for k, v in form.items() if v}
    r = await token(api, form, auth=app.basic())
    assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_request")


async def test_a_verifier_without_challenge_is_a_downgrade(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    auth_request_id = await start(api, app, scope="openid")
    code = query_of(await callback(api, auth_request_id, await session(api)))["code"]
    verifier, _challenge = pkce()
    r = await token(api, exchange(app, code, verifier), auth=app.basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_a_code_is_for_its_client_only(api: Api) -> None:
    app = await oidc_app(api)
    other = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app)
    r = await token(api, exchange(other, code, verifier), auth=other.basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    wrong_secret = await token(api, exchange(app, code, verifier), auth=(app.client_id, "nope"))
    assert wrong_secret.status_code == 401
    # The code still works for its client afterwards.
    assert (await token(api, exchange(app, code, verifier), auth=app.basic())).status_code == 200


async def test_an_expired_code_is_refused(api: Api) -> None:
    from donjon.plugins.oidc.provider import provider_of

    provider_of(api.runtime).settings.CodeLifetime = timedelta(seconds=1)
    try:
        app = await oidc_app(api)
        await add_person(api)
        code, verifier = await code_for(api, app)
        await anyio.sleep(1.1)
        r = await token(api, exchange(app, code, verifier), auth=app.basic())
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    finally:
        provider_of(api.runtime).settings.CodeLifetime = timedelta(seconds=60)


async def test_a_code_of_another_instance_is_unknown(api: Api, tmp_path: Any) -> None:
    app = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app)
    other = await second_instance(api, tmp_path)
    r = await other.client.post(
        "/oauth/v2/token", data=exchange(app, code, verifier), auth=app.basic()
    )
    assert r.status_code == 401  # the client is unknown there


async def test_a_confidential_client_must_authenticate(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    code, verifier = await code_for(api, app)
    r = await token(api, exchange(app, code, verifier, client_id=app.client_id))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert (await token(api, exchange(app, code, verifier), auth=app.basic())).status_code == 200


async def test_machine_users_cannot_use_the_code_grant(api: Api) -> None:
    from tests.plugins.oidc.support import machine

    m = await machine(api, "robot")
    r = await token(api, exchange(App("", "", "", ""), "x", None), auth=m.basic())
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
