"""Authlib's OAuth client (as an application developer would use it) against donjon:
the JWT profile grant with AssertionClient, client credentials with private_key_jwt."""

from __future__ import annotations

import warnings

import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.support import API_SCOPE, issuer, machine

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncAssertionClient, AsyncOAuth2Client
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using implicit key type"),
]


async def test_authlib_assertion_client_runs_the_jwt_profile_grant(api: Api) -> None:
    bot = await machine(api, "authlib-bot", secret=False, key=True)
    token_endpoint = f"{issuer(api)}/oauth/v2/token"
    async with AsyncAssertionClient(
        token_endpoint=token_endpoint,
        issuer=bot.user_id,
        subject=bot.user_id,
        audience=issuer(api),
        key=bot.private_key,
        header={"alg": "RS256", "kid": bot.key_id},
        scope=f"openid profile {API_SCOPE}",
        transport=api.client._transport,
    ) as client:
        # The first request fetches the token (the assertion client has no fetch_token).
        r = await client.get(f"{issuer(api)}/oidc/v1/userinfo")
        assert r.status_code == 200, r.text
        assert r.json()["sub"] == bot.user_id
        assert client.token["token_type"] == "Bearer" and client.token["id_token"]


async def test_authlib_client_credentials_with_private_key_jwt(api: Api) -> None:
    bot = await machine(api, "authlib-pkj", secret=False, key=True)
    token_endpoint = f"{issuer(api)}/oauth/v2/token"
    async with AsyncOAuth2Client(
        client_id=bot.user_id,
        client_secret=bot.private_key,
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, headers={"kid": bot.key_id}),
        scope=API_SCOPE,
        transport=api.client._transport,
    ) as client:
        token = await client.fetch_token(token_endpoint, grant_type="client_credentials")
        assert token["access_token"]
        r = await client.post(
            f"{issuer(api)}/zitadel.user.v2.UserService/GetUserByID",
            json={"userId": bot.user_id},
        )
        # The token authenticates; the bot may read itself.
        assert r.status_code == 200, r.text


async def test_authlib_code_flow_with_pkce_and_refresh(api: Api) -> None:
    from authlib.common.security import generate_token
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    from tests.plugins.oidc.login_support import (
        REDIRECT,
        add_person,
        callback,
        oidc_app,
        query_of,
        session,
    )

    app = await oidc_app(api)
    alice = await add_person(api)
    base = issuer(api)
    async with AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.secret,
        redirect_uri=REDIRECT,
        scope="openid email offline_access",
        code_challenge_method="S256",
        transport=api.client._transport,
    ) as client:
        verifier, nonce = generate_token(48), generate_token(16)
        url, state = client.create_authorization_url(
            f"{base}/oauth/v2/authorize", code_verifier=verifier, nonce=nonce
        )
        r = await api.client.get(url)  # the browser's part
        assert r.status_code == 302, r.text
        auth_request_id = query_of(r.headers["location"])["authRequest"]
        callback_url = await callback(api, auth_request_id, await session(api))
        token = await client.fetch_token(
            f"{base}/oauth/v2/token", authorization_response=callback_url, code_verifier=verifier
        )
        assert token["refresh_token"] and query_of(callback_url)["state"] == state
        keys = JsonWebKey.import_key_set((await client.get(f"{base}/oauth/v2/keys")).json())
        claims = jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"value": base}, "aud": {"value": app.client_id}},
            claims_params={
                "nonce": nonce,
                "client_id": app.client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate()
        assert claims["sub"] == alice
        refreshed = await client.refresh_token(f"{base}/oauth/v2/token")
        assert refreshed["refresh_token"] != token["refresh_token"]
        info = await client.get(f"{base}/oidc/v1/userinfo")
        assert info.status_code == 200 and info.json()["sub"] == alice
