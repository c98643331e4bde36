"""Web key events (on the instance aggregate) and the `oidc_web_keys` read model.

A key is added as `next` (published in the JWKS, signing nothing), becomes
`active` (the one key that signs) with `instance.web_key.activated`, which
turns the previously active key `inactive` (still published, so the tokens
it signed still verify), and is removed with `instance.web_key.removed`.
The private key is sealed with the master key's `oidcKey` purpose key and
kept base64-encoded; only the public JWK is ever served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.instance import AGGREGATE as INSTANCE
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, PatchWhere, Put, Remove, RemoveWhere

NEXT, ACTIVE, INACTIVE = "next", "active", "inactive"


@dataclass(frozen=True)
class WebKeyAdded(Event):
    TYPE = "instance.web_key.added"
    AGGREGATE_TYPE = INSTANCE
    key_id: str
    alg: str
    # The public key as a JWK (kty, crv/n/e, x/y, kid, alg, use).
    public_jwk: dict[str, Any]
    # PKCS#8 PEM sealed with the `oidcKey` purpose key, base64.
    private_key: str


@dataclass(frozen=True)
class WebKeyActivated(Event):
    TYPE = "instance.web_key.activated"
    AGGREGATE_TYPE = INSTANCE
    key_id: str


@dataclass(frozen=True)
class WebKeyRemoved(Event):
    TYPE = "instance.web_key.removed"
    AGGREGATE_TYPE = INSTANCE
    key_id: str


EVENT_TYPES: list[type[Event]] = [WebKeyAdded, WebKeyActivated, WebKeyRemoved]

web_keys_table = Table(
    "oidc_web_keys",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("private_key", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime, nullable=True),
    Column("deactivated_at", UTCDateTime, nullable=True),
)
Index("oidc_web_keys_instance", web_keys_table.c.instance_id, web_keys_table.c.state)


class WebKeysProjection(Projection):
    """`oidc_web_keys`, written in the push transaction."""

    name = "oidc_web_keys"
    version = 1
    inline = True
    tables = (web_keys_table,)

    @handles(WebKeyAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                web_keys_table,
                {
                    "instance_id": e.instance_id,
                    "id": p["key_id"],
                    "alg": p["alg"],
                    "state": NEXT,
                    "public_jwk": p["public_jwk"],
                    "private_key": p["private_key"],
                    "created_at": e.created_at,
                    "activated_at": None,
                    "deactivated_at": None,
                },
            )
        ]

    @handles(WebKeyActivated.TYPE)
    def activated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            PatchWhere(
                web_keys_table,
                {"instance_id": e.instance_id, "state": ACTIVE},
                {"state": INACTIVE, "deactivated_at": e.created_at},
            ),
            Patch(
                web_keys_table,
                {"instance_id": e.instance_id, "id": e.payload["key_id"]},
                {"state": ACTIVE, "activated_at": e.created_at},
            ),
        ]

    @handles(WebKeyRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(web_keys_table, {"instance_id": e.instance_id, "id": e.payload["key_id"]})]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(web_keys_table, {"instance_id": e.aggregate_id})]
