"""The JWT profile grant (RFC 7523) with machine users' keys, and what it refuses."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.conftest import Api
from tests.plugins.oidc.support import (
    JWT_BEARER,
    assertion,
    hs256_with_public_key,
    issuer,
    jwt_profile,
    machine,
    token,
)

pytestmark = pytest.mark.anyio


async def test_a_key_file_signed_assertion_gets_an_access_and_an_id_token(api: Api) -> None:
    bot = await machine(api, "profile-bot", secret=False, key=True)
    r = await jwt_profile(api, bot, scope="openid profile", jti=None)  # the SDK sends no jti
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid profile"
    header = jwt.get_unverified_header(body["id_token"])
    keys = (await api.client.get("/oauth/v2/keys")).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        body["id_token"],
        jwt.PyJWK(jwk).key,
        algorithms=[jwk["alg"]],
        audience=bot.user_id,
        issuer=issuer(api),
    )
    assert claims["sub"] == bot.user_id
    assert claims["name"] == "profile-bot"
    assert claims["preferred_username"].startswith("profile-bot")


async def test_without_openid_there_is_no_id_token(api: Api) -> None:
    bot = await machine(api, "noid-bot", secret=False, key=True)
    r = await jwt_profile(api, bot, scope="profile")
    assert r.status_code == 200 and "id_token" not in r.json()


async def test_an_uploaded_ec_key_signs_with_es256(api: Api) -> None:
    bot = await machine(api, "ec-bot", secret=False)
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    added = await api.ok(
        "user",
        "AddKey",
        {"userId": bot.user_id, "publicKey": base64.b64encode(public_pem).decode()},
    )
    bot.key_id = added["keyId"]
    r = await jwt_profile(api, bot, key=private, alg="ES256")
    assert r.status_code == 200, r.text
    # An RSA algorithm on an EC key is refused before any signature check.
    rsa_bot = await machine(api, "rsa-bot", secret=False, key=True)
    wrong = await jwt_profile(api, bot, key=rsa_bot.private_key, alg="RS256")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "does not match the key" in wrong.json()["error_description"]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"aud": "https://elsewhere.example.com"}, "aud"),
        ({"lifetime": -120}, "expired"),
        ({"lifetime": 3 * 3600}, "too long"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"iss": "someone-else"}, "iss"),
    ],
)
async def test_bad_assertions_are_invalid_grant(api: Api, kw: dict, words: str) -> None:  # type: ignore[type-arg]
    bot = await machine(api, "bad-bot", secret=False, key=True)
    r = await jwt_profile(api, bot, **kw)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    assert words in r.json()["error_description"]


async def test_unsigned_assertions_are_refused(api: Api) -> None:
    bot = await machine(api, "none-bot", secret=False, key=True)
    now = int(time.time())
    claims = {
        "iss": bot.user_id,
        "sub": bot.user_id,
        "aud": issuer(api),
        "iat": now,
        "exp": now + 60,
    }
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": bot.key_id})
    r = await token(api, {"grant_type": JWT_BEARER, "assertion": unsigned})
    assert r.status_code == 400 and "alg none" in r.json()["error_description"]


async def test_hs256_signed_with_the_public_key_is_refused(api: Api) -> None:
    bot = await machine(api, "hmac-bot", secret=False, key=True)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    public_pem = (
        load_pem_private_key(bot.private_key.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    now = int(time.time())
    forged = hs256_with_public_key(
        bot,
        public_pem,
        {"iss": bot.user_id, "sub": bot.user_id, "aud": issuer(api), "iat": now, "exp": now + 60},
    )
    r = await token(api, {"grant_type": JWT_BEARER, "assertion": forged})
    assert r.status_code == 400
    assert "symmetric" in r.json()["error_description"]


async def test_a_signature_by_another_key_is_refused(api: Api) -> None:
    bot = await machine(api, "forge-bot", secret=False, key=True)
    other = await machine(api, "other-bot", secret=False, key=True)
    r = await jwt_profile(api, bot, key=other.private_key)
    assert r.status_code == 400 and "signature" in r.json()["error_description"]


async def test_an_assertion_jti_is_single_use(api: Api) -> None:
    bot = await machine(api, "once-bot", secret=False, key=True)
    signed = assertion(bot, aud=issuer(api), jti="the-one")
    first = await token(api, {"grant_type": JWT_BEARER, "assertion": signed})
    assert first.status_code == 200
    again = await token(api, {"grant_type": JWT_BEARER, "assertion": signed})
    assert again.status_code == 400 and "used before" in again.json()["error_description"]


async def test_a_removed_key_or_deactivated_user_no_longer_signs(api: Api) -> None:
    bot = await machine(api, "gone-bot", secret=False, key=True)
    await api.ok("user", "RemoveKey", {"userId": bot.user_id, "keyId": bot.key_id})
    r = await jwt_profile(api, bot)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    other = await machine(api, "off-bot", secret=False, key=True)
    await api.ok("user", "DeactivateUser", {"userId": other.user_id})
    r = await jwt_profile(api, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_the_assertion_parameter_is_required(api: Api) -> None:
    r = await token(api, {"grant_type": JWT_BEARER})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_client_credentials_naming_no_client_are_ignored_but_wrong_secrets_refused(
    api: Api,
) -> None:
    # ZITADEL's SDK sends `Basic None:None` or `client_id=None` with its JWT profile requests.
    bot = await machine(api, "sdk-like-bot", secret=True, key=True)
    form = {"grant_type": JWT_BEARER, "assertion": assertion(bot, aud=issuer(api))}
    r = await token(api, form, auth=("None", "None"))
    assert r.status_code == 200, r.text
    r = await token(
        api, {**form, "assertion": assertion(bot, aud=issuer(api)), "client_id": "None"}
    )
    assert r.status_code == 200, r.text
    wrong = await token(
        api, {**form, "assertion": assertion(bot, aud=issuer(api))}, auth=(bot.username, "wrong")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
