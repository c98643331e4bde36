"""Applications authenticating with `private_key_jwt` and their application keys: Authlib's
client with the key file from CreateApplicationKey (introspection by an API app, the code
flow of a web app), and the assertions that are refused (expired or removed key, wrong
audience, reused jti, another app's key, an app no longer registered for private_key_jwt)."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from donjon.core.identity import app_keys, apps
from tests.api.conftest import Api
from tests.plugins.oidc.login_support import (
    REDIRECT,
    add_person,
    callback,
    oidc_app,
    query_of,
    session,
)
from tests.plugins.oidc.support import (
    CLIENT_ASSERTION_TYPE,
    client_credentials,
    issuer,
    machine,
    project,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using implicit key type"),
]
INTROSPECT = "/oauth/v2/introspect"


@dataclass
class KeyFile:
    key_id: str
    key: str
    app_id: str
    client_id: str


async def new_key(api: Api, app_id: str) -> KeyFile:
    created = await api.ok("application", "CreateApplicationKey", {"applicationId": app_id})
    data = json.loads(base64.b64decode(created["keyDetails"]))
    assert data["type"] == "application"
    return KeyFile(data["keyId"], data["key"], data["appId"], data["clientId"])


async def jwt_api_app(api: Api, project_id: str) -> tuple[str, KeyFile]:
    created = await api.ok(
        "application",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "resource-server",
            "apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"},
        },
    )
    assert "clientSecret" not in created["apiConfiguration"]
    return created["applicationId"], await new_key(api, created["applicationId"])


def client_assertion(
    key: KeyFile, aud: Any, *, jti: str | None = None, lifetime: int = 60, kid: str = ""
) -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "iss": key.client_id,
            "sub": key.client_id,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or uuid.uuid4().hex,
        },
        key.key,
        algorithm="RS256",
        headers={"kid": kid or key.key_id},
    )


async def introspect_with(api: Api, token: str, assertion: str) -> Any:
    return await api.client.post(
        INTROSPECT,
        data={
            "token": token,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


async def test_authlib_api_app_introspects_with_its_key_file(api: Api) -> None:
    shop = await project(api)
    _app_id, key = await jwt_api_app(api, shop)
    bot = await machine(api, "introspected-bot")
    access = (await client_credentials(api, bot, f"urn:zitadel:iam:org:project:id:{shop}:aud"))[
        "access_token"
    ]
    async with AsyncOAuth2Client(
        client_id=key.client_id,
        client_secret=key.key,
        token_endpoint_auth_method=PrivateKeyJWT(headers={"kid": key.key_id}),
        transport=api.client._transport,
    ) as client:
        r = await client.introspect_token(f"{issuer(api)}{INTROSPECT}", token=access)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["active"] is True and info["sub"] == bot.user_id and shop in info["aud"]


async def test_authlib_web_app_redeems_a_code_with_its_key_file(api: Api) -> None:
    from authlib.common.security import generate_token

    app = await oidc_app(api, authMethodType="OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT")
    assert app.secret == ""
    key = await new_key(api, app.app_id)
    assert key.client_id == app.client_id
    alice = await add_person(api)
    base = issuer(api)
    token_endpoint = f"{base}/oauth/v2/token"
    async with AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=key.key,
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, headers={"kid": key.key_id}),
        redirect_uri=REDIRECT,
        scope="openid offline_access",
        code_challenge_method="S256",
        transport=api.client._transport,
    ) as client:
        verifier = generate_token(48)
        url, _state = client.create_authorization_url(
            f"{base}/oauth/v2/authorize", code_verifier=verifier
        )
        r = await api.client.get(url)
        auth_request_id = query_of(r.headers["location"])["authRequest"]
        callback_url = await callback(api, auth_request_id, await session(api))
        token = await client.fetch_token(
            token_endpoint, authorization_response=callback_url, code_verifier=verifier
        )
        assert token["id_token"] and token["refresh_token"]
        claims = jwt.decode(token["id_token"], options={"verify_signature": False})
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert claims["sub"] == alice and app.client_id in aud
        refreshed = await client.refresh_token(token_endpoint)
        assert refreshed["access_token"] != token["access_token"]


async def test_refused_client_assertions(api: Api) -> None:
    shop = await project(api)
    app_id, key = await jwt_api_app(api, shop)
    _other_id, other_key = await jwt_api_app(api, shop)
    bot = await machine(api, "assertion-target")
    access = (await client_credentials(api, bot, f"urn:zitadel:iam:org:project:id:{shop}:aud"))[
        "access_token"
    ]
    endpoint = f"{issuer(api)}{INTROSPECT}"

    async def status(assertion: str) -> int:
        r = await introspect_with(api, access, assertion)
        if r.status_code != 200:
            assert r.json()["error"] == "invalid_client", r.text
        return r.status_code

    assert await status(client_assertion(key, endpoint)) == 200
    # The issuer is an accepted audience too; anything else is not.
    assert await status(client_assertion(key, issuer(api))) == 200
    assert await status(client_assertion(key, "https://elsewhere.example")) == 401
    # A jti is used once.
    jti = uuid.uuid4().hex
    assert await status(client_assertion(key, endpoint, jti=jti)) == 200
    assert await status(client_assertion(key, endpoint, jti=jti)) == 401
    # Too long-lived, or signed with another app's key.
    assert await status(client_assertion(key, endpoint, lifetime=7200)) == 401
    forged = KeyFile(key.key_id, other_key.key, key.app_id, key.client_id)
    assert await status(client_assertion(forged, endpoint)) == 401
    assert await status(client_assertion(key, endpoint, kid=other_key.key_id)) == 401
    # A removed key stops working at once.
    spare = await new_key(api, app_id)
    assert await status(client_assertion(spare, endpoint)) == 200
    await api.ok("application", "DeleteApplicationKey", {"keyId": spare.key_id})
    assert await status(client_assertion(spare, endpoint)) == 401
    # So does an app switched to client secrets, and a deactivated app.
    await api.ok(
        "application",
        "UpdateApplication",
        {
            "applicationId": app_id,
            "apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_BASIC"},
        },
    )
    assert await status(client_assertion(key, endpoint)) == 401
    await api.ok(
        "application",
        "UpdateApplication",
        {
            "applicationId": app_id,
            "apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"},
        },
    )
    assert await status(client_assertion(key, endpoint)) == 200
    await api.ok("application", "DeactivateApplication", {"applicationId": app_id})
    assert await status(client_assertion(key, endpoint)) == 401


async def test_an_expired_application_key_is_refused(api: Api) -> None:
    shop = await project(api)
    app_id, _key = await jwt_api_app(api, shop)
    # The API refuses a past expiration; an expired key is one whose time has passed.
    from donjon.core.identity.user_keys import generate_key

    private_pem, public_pem = generate_key()
    state = await apps.AppState.load_app(api.runtime.store, api.instance_id, shop, app_id)
    expired = app_keys.add_key(state, "expired-key", public_pem, "2020-01-01T00:00:00Z")
    await api.runtime.store.push(expired, creator=api.admin_id)
    key = KeyFile("expired-key", private_pem, app_id, str(state.app["client_id"]))
    bot = await machine(api, "expired-target")
    access = (await client_credentials(api, bot, "openid"))["access_token"]
    r = await introspect_with(api, access, client_assertion(key, f"{issuer(api)}{INTROSPECT}"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
