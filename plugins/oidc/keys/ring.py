"""The key ring: each instance's web keys, made on first use and rotated on schedule.

Rules (checked each time a process refreshes its view, at most every
`CACHE_TTL` seconds per instance):

- *created lazily*: the first time an instance signs or serves its JWKS, it
  gets an active key and a next key in one push. The push claims the unique
  value `oidc_web_key_initial`, so of two processes racing, one creates the
  pair and the other reads it.
- *published before use*: a next key is in the JWKS from the moment it is
  made; it becomes active only once it has been published for at least
  `JwksCacheMaxAge` (so every client's cached JWKS has it) and the active key
  has signed for `KeyRotationPeriod`. Each key is activated once: the
  rotation push claims `oidc_web_key_activated:<kid>`, so two processes never
  both rotate.
- *kept until its tokens expire*: an inactive key is removed by the first
  rotation after it has been inactive for the longest token lifetime plus
  `JwksCacheMaxAge`, and leaves the JWKS at that moment even if no rotation
  is due.
- *the algorithm follows the active key*: the first keys use
  `SigningAlgorithm`; a next key made by rotation has the active key's
  algorithm (and RSA size), so a key activated through the WebKeyService
  (`manage`) sets the instance's algorithm from then on.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from sqlalchemy import select

from donjon.core import ids
from donjon.core.errors import UniqueConstraintError
from donjon.core.events import AddUnique, Aggregate, AggregateChanges, Event
from donjon.core.instance import AGGREGATE as INSTANCE
from donjon.plugins.oidc.keys.events import (
    ACTIVE,
    INACTIVE,
    NEXT,
    WebKeyActivated,
    WebKeyAdded,
    WebKeyRemoved,
    web_keys_table,
)
from donjon.plugins.oidc.keys.generate import (
    RSA_BITS,
    load_private_pem,
    new_private_key,
    private_pem,
    public_jwk,
    rsa_bits_of,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime
    from donjon.plugins.oidc.settings import OIDCSettings

#: The master key purpose that seals web keys' private halves.
PURPOSE = "oidcKey"
#: Seconds a process trusts its view of an instance's keys.
CACHE_TTL = 5.0
CREATOR = "SYSTEM"
UNIQUE_INITIAL = "oidc_web_key_initial"
UNIQUE_ACTIVATED = "oidc_web_key_activated"


@dataclass(frozen=True, slots=True)
class WebKey:
    id: str
    alg: str
    state: str
    public_jwk: dict[str, Any]
    sealed_private: str
    created_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None


def successor_claim(active_key_id: str) -> str:
    """The unique value claimed when the active key's successor is made (one per active
    key; released by `manage` when a key is activated or a next key removed)."""
    return f"next-for:{active_key_id}"


def signing_key_of(keys: list[WebKey]) -> WebKey | None:
    return next((k for k in keys if k.state == ACTIVE), None)


def next_key_of(keys: list[WebKey]) -> WebKey | None:
    """The key rotation activates next: the oldest next key of the active key's algorithm.

    A next key of another algorithm (made through the WebKeyService and not
    activated) is never activated by rotation: only an administrator does that.
    """
    active = signing_key_of(keys)
    return next(
        (k for k in keys if k.state == NEXT and (active is None or k.alg == active.alg)), None
    )


def rotation_due(keys: list[WebKey], now: datetime, settings: OIDCSettings) -> bool:
    """Whether the active key has signed for a rotation period and the next key
    has been published for at least the JWKS cache lifetime."""
    active, upcoming = signing_key_of(keys), next_key_of(keys)
    if active is None or upcoming is None or active.activated_at is None:
        return False
    return (
        active.activated_at + settings.KeyRotationPeriod <= now
        and upcoming.created_at + settings.JwksCacheMaxAge <= now
    )


def is_expired(key: WebKey, now: datetime, settings: OIDCSettings) -> bool:
    """An inactive key no unexpired token can have been signed with any more."""
    keep_for = settings.longest_token_lifetime + settings.JwksCacheMaxAge
    return (
        key.state == INACTIVE
        and key.deactivated_at is not None
        and key.deactivated_at + keep_for <= now
    )


def expired_keys(keys: list[WebKey], now: datetime, settings: OIDCSettings) -> list[WebKey]:
    return [k for k in keys if is_expired(k, now, settings)]


class KeyRing:
    """One process's access to the web keys of every instance it serves."""

    def __init__(
        self,
        runtime: Runtime,
        settings: OIDCSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        #: The time rotation rules are checked against (tests move it forward).
        self.clock = clock
        self._cache: dict[str, tuple[list[WebKey], float]] = {}
        self._private: dict[tuple[str, str], PrivateKeyTypes] = {}

    async def keys(self, instance_id: str) -> list[WebKey]:
        """The instance's published keys, creating or rotating them when due."""
        hit = self._cache.get(instance_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return await self.refresh(instance_id)

    async def refresh(self, instance_id: str) -> list[WebKey]:
        """Read the keys again, apply the rules above, and cache the result."""
        keys = await self._read(instance_id)
        changes = await self._maintenance(instance_id, keys)
        if changes is not None:
            try:
                await self.runtime.store.push(changes, creator=CREATOR)
            except UniqueConstraintError:
                pass  # another process did it first; read what it stored
            keys = await self._read(instance_id)
        self._cache[instance_id] = (keys, time.monotonic() + CACHE_TTL)
        return keys

    async def signing_key(self, instance_id: str) -> tuple[WebKey, PrivateKeyTypes]:
        """The active key and its private half."""
        keys = await self.keys(instance_id)
        active = signing_key_of(keys)
        if active is None:  # cannot happen after maintenance; read afresh once
            active = signing_key_of(await self.refresh(instance_id))
        if active is None:
            raise RuntimeError(f"instance {instance_id} has no active web key")
        return active, await self._private_key(instance_id, active)

    async def verification_key(self, instance_id: str, key_id: str) -> WebKey | None:
        """The published key `key_id` of this instance (read afresh on a miss), or None."""
        for key in await self.keys(instance_id):
            if key.id == key_id:
                return key
        for key in await self.refresh(instance_id):
            if key.id == key_id:
                return key
        return None

    async def jwks(self, instance_id: str) -> dict[str, Any]:
        """The JWK Set: active, next and inactive-but-not-expired keys."""
        # Deactivation times are the events' (real) times, whatever `clock` says.
        now = datetime.now(UTC)
        return {
            "keys": [
                dict(k.public_jwk)
                for k in await self.keys(instance_id)
                if not is_expired(k, now, self.settings)
            ]
        }

    async def new_key(self, alg: str, rsa_bits: int = RSA_BITS) -> WebKeyAdded:
        """The event adding a fresh key of `alg`, its private half sealed (ValueError for an
        algorithm or size web keys are not made with)."""
        key_id = ids.new_id()
        private = new_private_key(alg, rsa_bits)
        sealed = await self._keystore().encrypt(PURPOSE, private_pem(private))
        return WebKeyAdded(
            key_id=key_id,
            alg=alg,
            public_jwk=public_jwk(private.public_key(), key_id, alg),
            private_key=base64.b64encode(sealed).decode(),
        )

    # -- internals --------------------------------------------------------------------

    async def _read(self, instance_id: str) -> list[WebKey]:
        t = web_keys_table
        async with self.runtime.db.read() as conn:
            rows = await conn.execute(
                select(t).where(t.c.instance_id == instance_id).order_by(t.c.created_at, t.c.id)
            )
            return [
                WebKey(
                    r.id,
                    r.alg,
                    r.state,
                    r.public_jwk,
                    r.private_key,
                    r.created_at,
                    r.activated_at,
                    r.deactivated_at,
                )
                for r in rows
            ]

    async def _maintenance(self, instance_id: str, keys: list[WebKey]) -> AggregateChanges | None:
        aggregate = Aggregate(INSTANCE, instance_id, instance_id, instance_id)
        if not keys:
            alg = self.settings.SigningAlgorithm
            first, second = await self.new_key(alg), await self.new_key(alg)
            return AggregateChanges(
                aggregate,
                [first, WebKeyActivated(key_id=first.key_id), second],
                unique=[AddUnique(UNIQUE_INITIAL, "initial", "web keys already created")],
            )
        now = self.clock()
        active, upcoming = signing_key_of(keys), next_key_of(keys)
        if upcoming is None and active is not None:
            # A next key must always be waiting; one per active key.
            return AggregateChanges(
                aggregate,
                [await self._successor(active)],
                unique=[AddUnique(UNIQUE_ACTIVATED, successor_claim(active.id), "next key exists")],
            )
        if not rotation_due(keys, now, self.settings) or upcoming is None:
            return None
        events: list[Event] = [
            WebKeyActivated(key_id=upcoming.id),
            await self._successor(upcoming),
            *(WebKeyRemoved(key_id=k.id) for k in expired_keys(keys, now, self.settings)),
        ]
        return AggregateChanges(
            aggregate,
            events,
            unique=[AddUnique(UNIQUE_ACTIVATED, upcoming.id, "web key already activated")],
        )

    async def _successor(self, key: WebKey) -> WebKeyAdded:
        """A next key like `key` (its algorithm and RSA size)."""
        return await self.new_key(key.alg, rsa_bits_of(key.public_jwk))

    async def _private_key(self, instance_id: str, key: WebKey) -> PrivateKeyTypes:
        cached = self._private.get((instance_id, key.id))
        if cached is None:
            pem = await self._keystore().decrypt(PURPOSE, base64.b64decode(key.sealed_private))
            cached = self._private[(instance_id, key.id)] = load_private_pem(pem)
        return cached

    def _keystore(self):  # type: ignore[no-untyped-def]
        if self.runtime.keys is None:
            raise RuntimeError("web keys need the master key (the runtime has no key store)")
        return self.runtime.keys
