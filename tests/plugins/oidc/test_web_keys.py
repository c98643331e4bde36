"""Web keys: made once per instance even under concurrency, sealed at rest, rotated with the
next key published first, removed once their tokens have expired; the algorithm setting."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select

from donjon.core.eventstore.query import EventQuery
from donjon.plugins.oidc.keys.events import web_keys_table
from donjon.plugins.oidc.keys.ring import KeyRing
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.settings import OIDCSettings
from tests.api.conftest import Api
from tests.plugins.oidc.support import client_credentials, machine

pytestmark = pytest.mark.anyio


async def test_two_processes_creating_the_first_keys_at_once_make_one_pair(api: Api) -> None:
    settings = OIDCSettings()
    # Two key rings stand for two processes: neither has seen the keys yet.
    rings = [KeyRing(api.runtime, settings) for _ in range(4)]
    results = await asyncio.gather(*(ring.keys(api.instance_id) for ring in rings))
    ids = {tuple(k.id for k in keys) for keys in results}
    assert len(ids) == 1 and len(next(iter(ids))) == 2
    added = await api.runtime.store.query(
        EventQuery(instance_ids=(api.instance_id,), event_types=("instance.web_key.added",))
    )
    assert len(added) == 2


async def test_private_keys_are_sealed_with_the_master_key(api: Api) -> None:
    await api.client.get("/oauth/v2/keys")
    async with api.runtime.db.read() as conn:
        sealed = (await conn.execute(select(web_keys_table.c.private_key))).scalars().all()
    assert sealed
    for value in sealed:
        raw = base64.b64decode(value)
        assert b"PRIVATE KEY" not in raw  # not PEM: AES-GCM sealed
        pem = await api.runtime.keys.decrypt("oidcKey", raw)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")


async def test_rotation_activates_the_published_next_key_and_keeps_the_old_one(api: Api) -> None:
    provider = provider_of(api.runtime)
    ring = provider.keys
    first = await ring.keys(api.instance_id)
    active = next(k for k in first if k.state == "active")
    upcoming = next(k for k in first if k.state == "next")
    bot = await machine(api, "rotate-bot", token_type="jwt")
    old_token = (await client_credentials(api, bot))["access_token"]
    assert jwt.get_unverified_header(old_token)["kid"] == active.id

    # Not yet due: nothing changes.
    ring.clock = lambda: datetime.now(UTC) + timedelta(days=29)
    assert [k.id for k in await ring.refresh(api.instance_id)] == [k.id for k in first]

    ring.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    rotated = await ring.refresh(api.instance_id)
    states = {k.id: k.state for k in rotated}
    assert states[upcoming.id] == "active"
    assert states[active.id] == "inactive"  # still published: its tokens still verify
    assert len(rotated) == 3
    new_next = next(k for k in rotated if k.state == "next")
    published = {k["kid"] for k in (await api.client.get("/oauth/v2/keys")).json()["keys"]}
    assert published == {active.id, upcoming.id, new_next.id}

    new_token = (await client_credentials(api, bot))["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == upcoming.id
    for token in (old_token, new_token):
        status, _ = await api.as_token(token).call("user", "GetUserByID", {"userId": bot.user_id})
        assert status in (200, 403)  # authenticated either way (the bot has no roles)

    # A second rotation removes the key that stopped signing long ago.
    ring.clock = lambda: datetime.now(UTC) + timedelta(days=62)
    # (By then the new next key has been published for far longer than the JWKS cache.)
    again = await ring.refresh(api.instance_id)
    assert active.id not in {k.id for k in again}
    assert {k.state for k in again} == {"active", "inactive", "next"}


async def test_a_next_key_younger_than_the_jwks_cache_is_not_activated(api: Api) -> None:
    from donjon.plugins.oidc.keys.ring import rotation_due

    ring = provider_of(api.runtime).keys
    keys = await ring.keys(api.instance_id)
    settings = OIDCSettings()
    upcoming = next(k for k in keys if k.state == "next")
    # The active key is overdue, but the next key was published 1 minute ago.
    just_after = upcoming.created_at + timedelta(minutes=1)
    late_active = [
        k
        if k.state != "active"
        else type(k)(**{**_fields(k), "activated_at": just_after - timedelta(days=60)})
        for k in keys
    ]
    assert not rotation_due(late_active, just_after, settings)
    assert rotation_due(late_active, upcoming.created_at + timedelta(minutes=5), settings)


def _fields(key):  # type: ignore[no-untyped-def]
    return {name: getattr(key, name) for name in key.__slots__}


@pytest.mark.parametrize(("alg", "kty"), [("RS256", "RSA"), ("EdDSA", "OKP")])
async def test_the_signing_algorithm_setting_chooses_new_keys(api: Api, alg: str, kty: str) -> None:
    provider = provider_of(api.runtime)
    settings = OIDCSettings(SigningAlgorithm=alg)
    provider.settings = settings
    provider.keys = KeyRing(api.runtime, settings)
    keys = (await api.client.get("/oauth/v2/keys")).json()["keys"]
    assert {(k["alg"], k["kty"]) for k in keys} == {(alg, kty)}
    bot = await machine(api, f"alg-{kty.lower()}-bot", token_type="jwt")
    access = (await client_credentials(api, bot))["access_token"]
    jwk = next(k for k in keys if k["kid"] == jwt.get_unverified_header(access)["kid"])
    claims = jwt.decode(access, jwt.PyJWK(jwk).key, algorithms=[alg], options={"verify_aud": False})
    assert claims["sub"] == bot.user_id
    status, _ = await api.as_token(access).call("user", "GetUserByID", {"userId": bot.user_id})
    assert status != 401


def test_settings_are_checked_with_their_key_names() -> None:
    from donjon.core.config import parse
    from donjon.core.errors import ConfigError

    parsed = parse(OIDCSettings, {"SigningAlgorithm": "rs256", "AccessTokenLifetime": "1h"})
    assert parsed.SigningAlgorithm == "RS256"
    assert parsed.AccessTokenLifetime == timedelta(hours=1)
    for bad, key in (
        ({"SigningAlgorithm": "HS256"}, "SigningAlgorithm"),
        ({"AccessTokenLifetime": "0s"}, "AccessTokenLifetime"),
        ({"KeyRotationPeriod": "1m"}, "KeyRotationPeriod"),
    ):
        with pytest.raises(ConfigError, match=f"Plugins.oidc.{key}"):
            parse(OIDCSettings, bad, "Plugins.oidc")
