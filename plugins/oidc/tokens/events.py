"""OIDC sessions and their access tokens: events (aggregate `oidc_session`) and read model.

ZITADEL records what it issues as `oidc_session` aggregates; so does donjon.
A machine-to-machine grant is one push of one event, `oidc_session.added`,
carrying the access token's id (its `jti`), the SHA-256 of an opaque token
(empty for a JWT, which is checked by signature), its subject, client,
audience, scopes and expiry. `oidc_session.access_token.revoked` (RFC 7009)
marks it revoked. The inline read model `oidc_access_tokens` is what
introspection, userinfo and the management API read: one row per token,
found by digest (opaque) or by id (JWT). A token issued by token exchange
to an actor on a user's behalf (RFC 8693 impersonation) records the actor
(`{"iss", "sub"}`, nested `act` for a chain), which introspection shows as
the `act` claim.

A token issued with a DPoP proof (RFC 9449) records the thumbprint of the
proof's key (`dpop_jkt`); it is then usable only with proofs of that key.

A removed user takes its tokens with it; a deactivated or locked user's
tokens stay but stop working, because every check joins the user's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.users import parse_time
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, PatchWhere, Put, RemoveWhere

AGGREGATE = "oidc_session"
BEARER, JWT = "bearer", "jwt"


@dataclass(frozen=True)
class OIDCSessionAdded(Event):
    TYPE = "oidc_session.added"
    AGGREGATE_TYPE = AGGREGATE
    user_id: str
    # The user's org.
    org_id: str
    client_id: str
    grant_type: str
    token_id: str
    # bearer (opaque) or jwt
    token_type: str
    # SHA-256 of an opaque access token; empty for a JWT.
    token_digest: str
    # RFC 3339
    expiration: str
    audience: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    # How the subject proved itself (amr-like: client_secret, private_key_jwt, jwt_profile).
    auth_methods: list[str] = field(default_factory=list)
    # RFC 8693 §4.1 `act`: who acts for the subject (token exchange); empty for none.
    actor: dict[str, Any] = field(default_factory=dict)
    # RFC 9449: the JWK thumbprint of the DPoP key the token is bound to; empty for Bearer.
    dpop_jkt: str = ""


@dataclass(frozen=True)
class AccessTokenRevoked(Event):
    TYPE = "oidc_session.access_token.revoked"
    AGGREGATE_TYPE = AGGREGATE
    token_id: str
    # Who asked: the client id of the revocation request.
    client_id: str = ""


@dataclass(frozen=True)
class AccessTokenAdded(OIDCSessionAdded):
    """A further access token of an existing session (a refresh)."""

    TYPE = "oidc_session.access_token.added"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class OIDCSessionRevoked(Event):
    """Every token of the session stops working: an authorization code or refresh
    token was used twice (RFC 9700 §4.2.1, §4.14.2), or the family was revoked."""

    TYPE = "oidc_session.revoked"
    AGGREGATE_TYPE = AGGREGATE
    reason: str = ""


EVENT_TYPES: list[type[Event]] = [
    OIDCSessionAdded,
    AccessTokenRevoked,
    AccessTokenAdded,
    OIDCSessionRevoked,
]

access_tokens_table = Table(
    "oidc_access_tokens",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("session_id", Text, nullable=False),
    # NULL for JWT access tokens.
    Column("digest", Text, nullable=True),
    Column("token_type", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("org_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("grant_type", Text, nullable=False),
    Column("audience", JSON, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("auth_methods", JSON, nullable=False),
    # RFC 8693 `act` of an exchanged token; NULL for none.
    Column("actor", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
    # The DPoP key's thumbprint (RFC 9449 `cnf.jkt`); empty for Bearer tokens.
    Column("dpop_jkt", Text, nullable=False),
)
Index(
    "oidc_access_tokens_digest",
    access_tokens_table.c.digest,
    access_tokens_table.c.instance_id,
    unique=True,
)
Index("oidc_access_tokens_user", access_tokens_table.c.instance_id, access_tokens_table.c.user_id)
# Revoking a session (code reuse, refresh token reuse, logout) patches its tokens.
Index(
    "oidc_access_tokens_session",
    access_tokens_table.c.instance_id,
    access_tokens_table.c.session_id,
)


class AccessTokensProjection(Projection):
    """`oidc_access_tokens`, written in the push transaction."""

    name = "oidc_access_tokens"
    # 2: index by session (oidc_session.revoked), access tokens added by refreshes.
    # 3: the actor of exchanged tokens (RFC 8693 act).
    # 4: dpop_jkt.
    version = 4
    inline = True
    tables = (access_tokens_table,)

    @handles(OIDCSessionAdded.TYPE, AccessTokenAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                access_tokens_table,
                {
                    "instance_id": e.instance_id,
                    "id": p["token_id"],
                    "session_id": e.aggregate_id,
                    "digest": p["token_digest"] or None,
                    "token_type": p["token_type"],
                    "user_id": p["user_id"],
                    "org_id": p["org_id"],
                    "client_id": p["client_id"],
                    "grant_type": p["grant_type"],
                    "audience": p.get("audience", []),
                    "scopes": p.get("scopes", []),
                    "auth_methods": p.get("auth_methods", []),
                    "actor": p.get("actor") or None,
                    "created_at": e.created_at,
                    "expires_at": parse_time(p["expiration"]),
                    "revoked": False,
                    "dpop_jkt": p.get("dpop_jkt", ""),
                },
            )
        ]

    @handles(AccessTokenRevoked.TYPE)
    def revoked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                access_tokens_table,
                {"instance_id": e.instance_id, "id": e.payload["token_id"]},
                {"revoked": True},
            )
        ]

    @handles(OIDCSessionRevoked.TYPE)
    def session_revoked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            PatchWhere(
                access_tokens_table,
                {"instance_id": e.instance_id, "session_id": e.aggregate_id},
                {"revoked": True},
            )
        ]

    @handles("user.removed")
    def user_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                access_tokens_table, {"instance_id": e.instance_id, "user_id": e.aggregate_id}
            )
        ]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(access_tokens_table, {"instance_id": e.aggregate_id})]
