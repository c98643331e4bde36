"""The client credentials grant for machine users, and client authentication."""

from __future__ import annotations

import base64

import jwt
import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.support import (
    API_SCOPE,
    CLIENT_ASSERTION_TYPE,
    api_app,
    assertion,
    client_credentials,
    issuer,
    machine,
    project,
    token,
)

pytestmark = pytest.mark.anyio


async def test_a_machine_user_gets_an_opaque_token_with_its_secret(api: Api) -> None:
    bot = await machine(api, "cc-bot")
    r = await token(
        api, {"grant_type": "client_credentials", "scope": f"openid {API_SCOPE}"}, auth=bot.basic()
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 12 * 3600
    assert body["scope"] == f"openid {API_SCOPE}"
    assert "id_token" not in body and "refresh_token" not in body
    assert len(body["access_token"]) >= 43 and body["access_token"].count(".") == 0


async def test_client_secret_post_works_too(api: Api) -> None:
    bot = await machine(api, "post-bot")
    r = await token(
        api,
        {
            "grant_type": "client_credentials",
            "client_id": bot.username,
            "client_secret": bot.secret,
        },
    )
    assert r.status_code == 200, r.text


async def test_a_jwt_machine_user_gets_an_at_jwt_signed_with_the_instance_key(api: Api) -> None:
    bot = await machine(api, "jwt-bot", token_type="jwt")
    shop = await project(api)
    body = await client_credentials(
        api, bot, f"openid {API_SCOPE} urn:zitadel:iam:org:project:id:{shop}:aud offline_access"
    )
    access = body["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    keys = (await api.client.get("/oauth/v2/keys")).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        access, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=shop, issuer=issuer(api)
    )
    assert claims["sub"] == bot.user_id
    assert claims["client_id"] == "jwt-bot"
    assert claims["aud"] == ["jwt-bot", shop, api.instance_id]
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert claims["jti"]
    # offline_access means nothing without a refresh token: not granted.
    assert claims["scope"] == f"openid {API_SCOPE} urn:zitadel:iam:org:project:id:{shop}:aud"
    assert "offline_access" not in body["scope"]


async def test_a_wrong_secret_is_invalid_client_401(api: Api) -> None:
    bot = await machine(api, "wrong-bot")
    r = await token(api, {"grant_type": "client_credentials"}, auth=(bot.username, "nope"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert r.headers["cache-control"] == "no-store"
    unknown = await token(api, {"grant_type": "client_credentials"}, auth=("nobody", "x"))
    assert unknown.status_code == 401 and unknown.json() == r.json()


async def test_a_deactivated_machine_user_cannot_get_tokens(api: Api) -> None:
    bot = await machine(api, "sleepy-bot")
    await api.ok("user", "DeactivateUser", {"userId": bot.user_id})
    r = await token(api, {"grant_type": "client_credentials"}, auth=bot.basic())
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_applications_cannot_use_client_credentials(api: Api) -> None:
    client_id, secret = await api_app(api, await project(api))
    r = await token(api, {"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "invalid_client"),
    ],
)
async def test_bad_token_requests_get_oauth_errors(
    api: Api, form: dict[str, str], error: str
) -> None:
    r = await token(api, form)
    assert r.json()["error"] == error
    assert r.json()["error_description"]
    assert r.status_code in (400, 401)


async def test_repeated_parameters_and_json_bodies_are_refused(api: Api) -> None:
    bot = await machine(api, "repeat-bot")
    r = await api.client.post(
        "/oauth/v2/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=bot.basic(),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await api.client.post("/oauth/v2/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_two_client_authentication_methods_at_once_are_refused(api: Api) -> None:
    bot = await machine(api, "twice-bot")
    r = await token(
        api,
        {
            "grant_type": "client_credentials",
            "client_id": bot.username,
            "client_secret": bot.secret,
        },
        auth=bot.basic(),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_scopes_for_unknown_projects_or_other_orgs_are_invalid_scope(api: Api) -> None:
    bot = await machine(api, "scope-bot")
    for scope in (
        "urn:zitadel:iam:org:project:id:404:aud",
        "urn:zitadel:iam:org:id:404",
    ):
        r = await token(api, {"grant_type": "client_credentials", "scope": scope}, auth=bot.basic())
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
    other = (await api.ok("org", "AddOrganization", {"name": "Other"}))["organizationId"]
    r = await token(
        api,
        {"grant_type": "client_credentials", "scope": f"urn:zitadel:iam:org:id:{other}"},
        auth=bot.basic(),
    )
    assert r.status_code == 400 and "does not belong" in r.json()["error_description"]
    mine = await token(
        api,
        {"grant_type": "client_credentials", "scope": f"urn:zitadel:iam:org:id:{api.org_id}"},
        auth=bot.basic(),
    )
    assert mine.status_code == 200


# -- private_key_jwt (RFC 7523 client assertions) ------------------------------------------------


async def key_client_form(api: Api, bot, **kw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    kw.setdefault("aud", f"{issuer(api)}/oauth/v2/token")
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(bot, **kw),
    }


async def test_private_key_jwt_authenticates_a_machine_user(api: Api) -> None:
    bot = await machine(api, "pkj-bot", secret=False, key=True)
    r = await token(api, await key_client_form(api, bot))
    assert r.status_code == 200, r.text
    by_issuer = await token(api, await key_client_form(api, bot, aud=issuer(api)))
    assert by_issuer.status_code == 200, by_issuer.text


async def test_a_client_assertion_is_single_use(api: Api) -> None:
    bot = await machine(api, "replay-bot", secret=False, key=True)
    form = await key_client_form(api, bot)
    assert (await token(api, form)).status_code == 200
    again = await token(api, form)
    assert again.status_code == 401
    assert "used before" in again.json()["error_description"]


async def test_a_client_assertion_needs_a_jti(api: Api) -> None:
    bot = await machine(api, "nojti-bot", secret=False, key=True)
    r = await token(api, await key_client_form(api, bot, jti=None))
    assert r.status_code == 401 and "jti" in r.json()["error_description"]


async def test_client_assertions_for_another_audience_or_expired_are_refused(api: Api) -> None:
    bot = await machine(api, "aud-bot", secret=False, key=True)
    for kw, words in (
        ({"aud": "https://elsewhere.example.com"}, "aud"),
        ({"lifetime": -60}, "expired"),
        ({"lifetime": 24 * 3600}, "too long"),
    ):
        r = await token(api, await key_client_form(api, bot, **kw))
        assert r.status_code == 401, (kw, r.text)
        assert r.json()["error"] == "invalid_client"
        assert words in r.json()["error_description"], (kw, r.text)


async def test_unsigned_and_hmac_client_assertions_are_refused(api: Api) -> None:
    bot = await machine(api, "alg-bot", secret=False, key=True)
    unsigned = await key_client_form(api, bot)
    header, claims, _sig = unsigned["client_assertion"].split(".")
    none_header = (
        base64.urlsafe_b64encode(b'{"alg":"none","kid":"%s"}' % bot.key_id.encode())
        .rstrip(b"=")
        .decode()
    )
    unsigned["client_assertion"] = f"{none_header}.{claims}."
    r = await token(api, unsigned)
    assert r.status_code == 401 and "alg none" in r.json()["error_description"]
