"""Using issued tokens: introspection (RFC 7662), revocation (RFC 7009), userinfo, the
management API, and tokens of another instance refused everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.support import (
    API_SCOPE,
    api_app,
    client_credentials,
    jwt_profile,
    machine,
    project,
    second_instance,
)

pytestmark = pytest.mark.anyio


async def introspect(api: Api, access: str, auth: tuple[str, str]) -> dict:  # type: ignore[type-arg]
    r = await api.client.post("/oauth/v2/introspect", data={"token": access}, auth=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


@pytest.mark.parametrize("token_type", ["bearer", "jwt"])
async def test_an_api_app_introspects_tokens_for_its_project(api: Api, token_type: str) -> None:
    shop = await project(api)
    app = await api_app(api, shop)
    bot = await machine(api, f"intro-{token_type}", token_type=token_type)
    access = (
        await client_credentials(api, bot, f"profile urn:zitadel:iam:org:project:id:{shop}:aud")
    )["access_token"]
    info = await introspect(api, access, app)
    assert info["active"] is True
    assert info["sub"] == bot.user_id
    assert info["client_id"] == bot.username
    assert shop in info["aud"]
    assert info["scope"] == f"profile urn:zitadel:iam:org:project:id:{shop}:aud"
    assert info["token_type"] == "Bearer"
    assert info["exp"] > info["iat"]
    assert info["username"].startswith(bot.username)
    assert info["name"] == bot.username


async def test_introspection_hides_tokens_of_other_audiences(api: Api) -> None:
    app = await api_app(api, await project(api, "Mine"))
    bot = await machine(api, "elsewhere-bot")
    access = (await client_credentials(api, bot, "openid"))["access_token"]
    assert await introspect(api, access, app) == {"active": False}
    assert await introspect(api, "not-a-token", app) == {"active": False}


async def test_introspection_needs_an_authenticated_application(api: Api) -> None:
    bot = await machine(api, "nosy-bot")
    access = (await client_credentials(api, bot))["access_token"]
    r = await api.client.post("/oauth/v2/introspect", data={"token": access})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await api.client.post("/oauth/v2/introspect", data={"token": access}, auth=bot.basic())
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    app_id, _secret = await api_app(api, await project(api))
    r = await api.client.post("/oauth/v2/introspect", data={"token": access}, auth=(app_id, "x"))
    assert r.status_code == 401


@pytest.mark.parametrize("token_type", ["bearer", "jwt"])
async def test_a_revoked_token_no_longer_introspects_active_nor_calls_the_api(
    api: Api, token_type: str
) -> None:
    shop = await project(api)
    app = await api_app(api, shop)
    bot = await machine(api, f"revoke-{token_type}", token_type=token_type)
    access = (
        await client_credentials(api, bot, f"{API_SCOPE} urn:zitadel:iam:org:project:id:{shop}:aud")
    )["access_token"]
    assert (await introspect(api, access, app))["active"] is True
    r = await api.client.post("/oauth/v2/revoke", data={"token": access}, auth=bot.basic())
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert await introspect(api, access, app) == {"active": False}
    status, _ = await api.as_token(access).call("org", "ListOrganizations", {})
    assert status == 401
    # Revoking again, or revoking nonsense, is still 200 (RFC 7009 §2.2).
    again = await api.client.post("/oauth/v2/revoke", data={"token": access}, auth=bot.basic())
    assert again.status_code == 200


async def test_a_client_cannot_revoke_another_clients_token(api: Api) -> None:
    owner = await machine(api, "owner-bot")
    thief = await machine(api, "thief-bot")
    access = (await client_credentials(api, owner))["access_token"]
    r = await api.client.post("/oauth/v2/revoke", data={"token": access}, auth=thief.basic())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    status, _ = await api.as_token(access).call("org", "ListOrganizations", {})
    assert status == 200


async def test_the_management_api_accepts_tokens_for_its_audience_only(api: Api) -> None:
    bot = await machine(api, "api-bot")
    await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": bot.user_id, "resource": {"instance": True}, "roles": ["IAM_OWNER"]},
    )
    with_api = (await client_credentials(api, bot))["access_token"]
    orgs = await api.as_token(with_api).ok("org", "ListOrganizations", {})
    assert orgs["result"]
    without_api = (await client_credentials(api, bot, "openid"))["access_token"]
    status, body = await api.as_token(without_api).call("org", "ListOrganizations", {})
    assert status == 401 and body["code"] == "unauthenticated"


async def test_jwt_profile_tokens_call_the_management_api(api: Api) -> None:
    bot = await machine(api, "key-api-bot", secret=False, key=True, token_type="jwt")
    r = await jwt_profile(api, bot)
    assert r.status_code == 200, r.text
    me = await api.as_token(r.json()["access_token"]).ok(
        "user", "GetUserByID", {"userId": bot.user_id}
    )
    assert me["user"]["userId"] == bot.user_id


async def test_userinfo_answers_a_machine_users_claims_by_scope(api: Api) -> None:
    bot = await machine(api, "info-bot")
    access = (await client_credentials(api, bot, "openid profile email"))["access_token"]
    for request in (
        api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"}),
        api.client.post("/oidc/v1/userinfo", data={"access_token": access}),
    ):
        r = await request
        assert r.status_code == 200, r.text
        claims = r.json()
        assert claims["sub"] == bot.user_id
        assert claims["name"] == "info-bot"
        assert claims["preferred_username"].startswith("info-bot")
        assert "email" not in claims


async def test_userinfo_refuses_missing_bad_and_openid_less_tokens(api: Api) -> None:
    r = await api.client.get("/oidc/v1/userinfo")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = await api.client.get("/oidc/v1/userinfo", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    bot = await machine(api, "scopeless-bot")
    access = (await client_credentials(api, bot, "profile"))["access_token"]
    r = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"


async def test_role_claims_for_the_requested_projects(api: Api) -> None:
    shop = await project(api)
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": shop, "roleKey": "reader", "displayName": "Reader"},
    )
    bot = await machine(api, "role-bot", token_type="jwt")
    await api.ok(
        "authorization",
        "CreateAuthorization",
        {"userId": bot.user_id, "projectId": shop, "roleKeys": ["reader"]},
    )
    scope = f"openid urn:zitadel:iam:org:project:roles urn:zitadel:iam:org:project:id:{shop}:aud"
    access = (await client_credentials(api, bot, scope))["access_token"]
    r = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    roles = r.json()["urn:zitadel:iam:org:project:roles"]
    assert list(roles) == ["reader"] and api.org_id in roles["reader"]
    assert r.json()[f"urn:zitadel:iam:org:project:{shop}:roles"] == roles
    import jwt

    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["urn:zitadel:iam:org:project:roles"] == roles


async def test_a_token_of_another_instance_is_refused_everywhere(api: Api, tmp_path: Path) -> None:
    other = await second_instance(api, tmp_path)
    async with other.client:
        bot_b = await machine(other, "b-bot", token_type="jwt")
        access_b = (await client_credentials(other, bot_b, f"openid {API_SCOPE}"))["access_token"]
        opaque_b = await machine(other, "b-opaque")
        opaque_access_b = (await client_credentials(other, opaque_b))["access_token"]
        # It works on its own instance...
        assert (await other.as_token(access_b).call("org", "ListOrganizations", {}))[0] == 200
        # ...and nowhere on this one: the management API, userinfo, introspection.
        app = await api_app(api, await project(api))
        for foreign in (access_b, opaque_access_b):
            status, _ = await api.as_token(foreign).call("org", "ListOrganizations", {})
            assert status == 401
            r = await api.client.get(
                "/oidc/v1/userinfo", headers={"authorization": f"Bearer {foreign}"}
            )
            assert r.status_code == 401
            assert await introspect(api, foreign, app) == {"active": False}
        # Its users are not clients here either.
        r = await api.client.post(
            "/oauth/v2/token", data={"grant_type": "client_credentials"}, auth=bot_b.basic()
        )
        assert r.status_code == 401
        # Each instance has its own keys.
        keys_a = {k["kid"] for k in (await api.client.get("/oauth/v2/keys")).json()["keys"]}
        keys_b = {k["kid"] for k in (await other.client.get("/oauth/v2/keys")).json()["keys"]}
        assert keys_a and keys_b and not keys_a & keys_b
        issuer_b = (await other.client.get("/.well-known/openid-configuration")).json()["issuer"]
        assert issuer_b.startswith("http://b.example")


async def test_forged_jwt_access_tokens_are_refused(api: Api) -> None:
    import base64
    import json

    bot = await machine(api, "forged-bot", token_type="jwt")
    genuine = (await client_credentials(api, bot))["access_token"]
    header_b64, claims_b64, signature = genuine.split(".")

    def part(value: dict) -> str:  # type: ignore[type-arg]
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    unsigned = f"{part({**header, 'alg': 'none'})}.{claims_b64}."
    tampered = f"{header_b64}.{part({**claims, 'sub': api.admin_id})}.{signature}"
    unknown_key = f"{part({**header, 'kid': 'nope'})}.{claims_b64}.{signature}"
    for forged in (unsigned, tampered, unknown_key):
        status, _ = await api.as_token(forged).call("org", "ListOrganizations", {})
        assert status == 401
        r = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {forged}"})
        assert r.status_code == 401
