"""WebKeyService: keys made by hand are published before they sign; activating one makes the
instance sign with it (tokens verify against the JWKS) and its successors follow its
algorithm; the active key cannot be deleted; permissions; ZITADEL's SDK models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from donjon.plugins.oidc.provider import provider_of
from tests.api.conftest import Api
from tests.api.test_project_service import machine_user
from tests.plugins.oidc.support import client_credentials, issuer, jwt_profile, machine

pytestmark = pytest.mark.anyio
WEBKEY = "zitadel.webkey.v2.WebKeyService"


async def jwks(api: Api) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/oauth/v2/keys")
    assert r.status_code == 200
    return {k["kid"]: k for k in r.json()["keys"]}


async def listed(api: Api) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in (await api.ok(WEBKEY, "ListWebKeys"))["webKeys"]}


def verify(token: str, keys: dict[str, dict[str, Any]], api: Api) -> dict[str, Any]:
    """The claims of a JWT checked with the JWKS key its header names, as a resource server."""
    header = jwt.get_unverified_header(token)
    jwk = keys[header["kid"]]
    assert header["alg"] == jwk["alg"]
    return jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=[jwk["alg"]],
        options={"verify_aud": False},
        issuer=issuer(api),
    )


async def test_an_activated_rsa_key_signs_tokens_that_verify_against_the_jwks(api: Api) -> None:
    bot = await machine(api, "webkey-bot", token_type="jwt", key=True)
    before = (await client_credentials(api, bot))["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]
    created = await api.ok(
        WEBKEY,
        "CreateWebKey",
        {"rsa": {"bits": "RSA_BITS_2048", "hasher": "RSA_HASHER_SHA256"}},
    )
    key_id = created["id"]
    assert created["creationDate"].endswith("Z")
    keys = await listed(api)
    assert keys[key_id]["state"] == "STATE_INITIAL"
    assert keys[key_id]["rsa"] == {"bits": "RSA_BITS_2048", "hasher": "RSA_HASHER_SHA256"}
    assert keys[old_kid]["state"] == "STATE_ACTIVE" and "ecdsa" in keys[old_kid]
    # Published at once, signing nothing yet.
    published = await jwks(api)
    assert published[key_id]["kty"] == "RSA" and published[key_id]["alg"] == "RS256"
    still = (await client_credentials(api, bot))["access_token"]
    assert jwt.get_unverified_header(still)["kid"] == old_kid

    activated = await api.ok(WEBKEY, "ActivateWebKey", {"id": key_id})
    assert activated["changeDate"].endswith("Z")
    r = await jwt_profile(api, bot)
    assert r.status_code == 200, r.text
    after = r.json()
    for token in (after["access_token"], after["id_token"]):
        header = jwt.get_unverified_header(token)
        assert header["kid"] == key_id and header["alg"] == "RS256"
    published = await jwks(api)
    assert verify(after["access_token"], published, api)["sub"] == bot.user_id
    assert verify(after["id_token"], published, api)["sub"] == bot.user_id
    # The old key stays published: tokens it signed still verify.
    assert verify(before, published, api)["sub"] == bot.user_id
    keys = await listed(api)
    assert keys[key_id]["state"] == "STATE_ACTIVE"
    assert keys[old_kid]["state"] == "STATE_INACTIVE"
    # Activating the active key changes nothing.
    again = await api.ok(WEBKEY, "ActivateWebKey", {"id": key_id})
    assert again["changeDate"] == keys[key_id]["changeDate"]


async def test_rotation_follows_the_activated_keys_algorithm(api: Api) -> None:
    ring = provider_of(api.runtime).keys
    initial = await ring.keys(api.instance_id)
    es_next = next(k for k in initial if k.state == "next")
    key_id = (await api.ok(WEBKEY, "CreateWebKey", {"ecdsa": {"curve": "ECDSA_CURVE_P384"}}))["id"]
    await api.ok(WEBKEY, "ActivateWebKey", {"id": key_id})
    keys = await ring.refresh(api.instance_id)
    # The successor waiting to take over is made like the active key.
    successor = next(k for k in keys if k.state == "next" and k.id != es_next.id)
    assert successor.alg == "ES384" and successor.public_jwk["crv"] == "P-384"
    ring.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    rotated = {k.id: k for k in await ring.refresh(api.instance_id)}
    assert rotated[successor.id].state == "active"
    # The ES256 key made before the change was never activated by rotation.
    assert rotated[es_next.id].state == "next"
    bot = await machine(api, "es384-bot", token_type="jwt", key=True)
    tokens = (await jwt_profile(api, bot)).json()
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "ES384"
    assert verify(tokens["access_token"], await jwks(api), api)["sub"] == bot.user_id


async def test_ed25519_keys_and_deleting_keys(api: Api) -> None:
    active = next(k for k, v in (await listed(api)).items() if v["state"] == "STATE_ACTIVE")
    ed = (await api.ok(WEBKEY, "CreateWebKey", {"ed25519": {}}))["id"]
    assert (await listed(api))[ed]["ed25519"] == {}
    assert (await jwks(api))[ed]["crv"] == "Ed25519"
    status, code, message = await api.error(WEBKEY, "DeleteWebKey", {"id": active})
    assert (status, code) == (400, "failed_precondition") and "active" in message
    deleted = await api.ok(WEBKEY, "DeleteWebKey", {"id": ed})
    assert deleted["deletionDate"].endswith("Z")
    assert ed not in await jwks(api) and ed not in await listed(api)
    assert (await api.error(WEBKEY, "DeleteWebKey", {"id": ed}))[1] == "not_found"
    assert (await api.error(WEBKEY, "ActivateWebKey", {"id": "nope"}))[1] == "not_found"
    assert (await api.error(WEBKEY, "ActivateWebKey", {}))[1] == "invalid_argument"
    # A key made without configuration is ZITADEL's default: RSA 2048, SHA-256.
    default = (await api.ok(WEBKEY, "CreateWebKey", {}))["id"]
    assert (await listed(api))[default]["rsa"] == {
        "bits": "RSA_BITS_2048",
        "hasher": "RSA_HASHER_SHA256",
    }


async def test_bad_configurations_are_refused(api: Api) -> None:
    before = await api.runtime.store.max_position()
    for body, field in [
        ({"rsa": {"bits": "RSA_BITS_1024"}}, "rsa.bits"),
        ({"rsa": {"hasher": "RSA_HASHER_MD5"}}, "rsa.hasher"),
        ({"ecdsa": {"curve": "ECDSA_CURVE_P192"}}, "ecdsa.curve"),
        ({"rsa": {}, "ed25519": {}}, "ed25519"),
    ]:
        status, code, message = await api.error(WEBKEY, "CreateWebKey", body)
        assert (status, code) == (400, "invalid_argument") and field in message, message
    assert await api.runtime.store.max_position() == before


async def test_web_keys_need_the_instance_permissions(api: Api) -> None:
    await api.ok(WEBKEY, "ListWebKeys")
    nobody = await machine_user(api)
    viewer = await machine_user(
        api, memberships=[("instance", api.instance_id, api.instance_id, ["IAM_OWNER_VIEWER"])]
    )
    some_key = next(iter(await listed(api)))
    for caller in (nobody, viewer):
        for method, body in [
            ("CreateWebKey", {}),
            ("ActivateWebKey", {"id": some_key}),
            ("DeleteWebKey", {"id": some_key}),
        ]:
            assert (await caller.error(WEBKEY, method, body))[1] == "permission_denied", method
    assert (await nobody.error(WEBKEY, "ListWebKeys"))[1] == "permission_denied"
    assert some_key in {k["id"] for k in (await viewer.ok(WEBKEY, "ListWebKeys"))["webKeys"]}


async def test_responses_parse_with_the_official_sdk_models(api: Api) -> None:
    from zitadel_client.models import (
        WebKeyServiceActivateWebKeyResponse,
        WebKeyServiceCreateWebKeyResponse,
        WebKeyServiceDeleteWebKeyResponse,
        WebKeyServiceListWebKeysResponse,
    )

    created = await api.ok(WEBKEY, "CreateWebKey", {"ecdsa": {"curve": "ECDSA_CURVE_P256"}})
    assert WebKeyServiceCreateWebKeyResponse.from_dict(created) is not None
    spare = (await api.ok(WEBKEY, "CreateWebKey", {"ed25519": {}}))["id"]
    activated = await api.ok(WEBKEY, "ActivateWebKey", {"id": created["id"]})
    assert WebKeyServiceActivateWebKeyResponse.from_dict(activated) is not None
    deleted = await api.ok(WEBKEY, "DeleteWebKey", {"id": spare})
    assert WebKeyServiceDeleteWebKeyResponse.from_dict(deleted) is not None
    parsed = WebKeyServiceListWebKeysResponse.from_dict(await api.ok(WEBKEY, "ListWebKeys"))
    assert parsed is not None and parsed.web_keys
    assert {k.state for k in parsed.web_keys} >= {"STATE_ACTIVE", "STATE_INACTIVE"}


async def test_the_ring_makes_a_new_successor_after_manual_changes(api: Api) -> None:
    ring = provider_of(api.runtime).keys
    keys = await ring.keys(api.instance_id)
    first_active = next(k for k in keys if k.state == "active")
    successor = next(k for k in keys if k.state == "next")
    # Deleting the waiting successor: the ring makes another one.
    await api.ok(WEBKEY, "DeleteWebKey", {"id": successor.id})
    keys = await ring.refresh(api.instance_id)
    replacement = next(k for k in keys if k.state == "next")
    assert replacement.id != successor.id
    # Activating by hand, then going back to the first key: each time the active key
    # gets a successor of its own.
    await api.ok(WEBKEY, "ActivateWebKey", {"id": replacement.id})
    keys = await ring.refresh(api.instance_id)
    assert any(k.state == "next" and k.created_at > replacement.created_at for k in keys)
    await api.ok(WEBKEY, "ActivateWebKey", {"id": first_active.id})
    for key in [k for k in await ring.refresh(api.instance_id) if k.state == "next"]:
        await api.ok(WEBKEY, "DeleteWebKey", {"id": key.id})
    keys = await ring.refresh(api.instance_id)
    assert next(k for k in keys if k.state == "active").id == first_active.id
    assert [k.alg for k in keys if k.state == "next"] == [first_active.alg]


async def test_an_inactive_key_leaves_the_jwks_once_its_tokens_have_expired(api: Api) -> None:
    from sqlalchemy import update

    from donjon.plugins.oidc.keys.events import web_keys_table

    old = next(k for k, v in (await listed(api)).items() if v["state"] == "STATE_ACTIVE")
    new = (await api.ok(WEBKEY, "CreateWebKey", {"ed25519": {}}))["id"]
    await api.ok(WEBKEY, "ActivateWebKey", {"id": new})
    assert old in await jwks(api)
    # Inactive for longer than the longest token lifetime plus the JWKS cache lifetime.
    settings = provider_of(api.runtime).settings
    long_ago = datetime.now(UTC) - settings.longest_token_lifetime - settings.JwksCacheMaxAge
    async with api.runtime.db.write() as conn:
        t = web_keys_table
        await conn.execute(
            update(t)
            .where(t.c.instance_id == api.instance_id, t.c.id == old)
            .values(deactivated_at=long_ago - timedelta(seconds=1))
        )
    await provider_of(api.runtime).keys.refresh(api.instance_id)
    published = await jwks(api)
    assert old not in published and new in published
    assert (await listed(api))[old]["state"] == "STATE_INACTIVE"
