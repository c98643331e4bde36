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
