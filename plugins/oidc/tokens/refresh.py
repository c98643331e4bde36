"""Refresh tokens (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

A refresh token belongs to an `oidc_session` (its family: every token
descending from one login). `oidc_session.refresh_token.added` records one:
its id, the SHA-256 of the token (never the token), the family's facts
(user, client, scopes, audience projects, login session, auth_time, amr)
and two expiries: idle (`RefreshTokenIdleLifetime` after it was issued)
and absolute (`RefreshTokenLifetime` after the login, the same for the whole
family). Using a refresh token adds the next one (`replaces` names the used
one) in the same push as the new access token; the used one is marked used,
and a unique claim on it makes sure only one use can ever succeed. A public
client's refresh token got with a DPoP proof is bound to that key (`dpop_jkt`,
RFC 9449 §5), and so are the ones that replace it. Presenting
a used token again revokes the whole family (`oidc_session.revoked`).

A family that began with a token exchange (RFC 8693) keeps its audience
and its actor (`act`, for impersonation) through every rotation: the
refreshed tokens are as narrow, and name the same actor, as the exchanged
ones.

Read model: `oidc_refresh_tokens`, one row per token, found by digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import secrets
from donjon.core.identity.users import parse_time
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, PatchWhere, Put, RemoveWhere
from donjon.plugins.oidc.tokens.events import AGGREGATE, OIDCSessionRevoked

#: The unique claim that makes a refresh token usable once.
USED_REFRESH_TOKEN = "oidc_refresh_token_used"


@dataclass(frozen=True)
class RefreshTokenAdded(Event):
    TYPE = "oidc_session.refresh_token.added"
    AGGREGATE_TYPE = AGGREGATE
    token_id: str
    token_digest: str
    user_id: str
    client_id: str
    # RFC 3339
    idle_expiration: str
    expiration: str
    auth_time: str
    scopes: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    amr: list[str] = field(default_factory=list)
    # The login (core `session`) the family comes from.
    login_session_id: str = ""
    # The refresh token this one replaces (rotation); empty for the first.
    replaces: str = ""
    # Token exchange: the audience chosen then (empty: from the scopes), and the actor.
    audience: list[str] = field(default_factory=list)
    actor: dict[str, Any] = field(default_factory=dict)
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key (thumbprint).
    dpop_jkt: str = ""


EVENT_TYPES: list[type[Event]] = [RefreshTokenAdded]

refresh_tokens_table = Table(
    "oidc_refresh_tokens",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("session_id", Text, nullable=False, index=True),
    Column("digest", Text, nullable=False),
    Column("user_id", Text, nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("projects", JSON, nullable=False),
    Column("amr", JSON, nullable=False),
    Column("login_session_id", Text, nullable=False),
    # Token exchange families only (NULL otherwise): their audience and actor.
    Column("audience", JSON, nullable=True),
    Column("actor", JSON, nullable=True),
    Column("auth_time", UTCDateTime, nullable=False),
    Column("idle_expires_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used", Boolean, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dpop_jkt", Text, nullable=False),
)
Index(
    "oidc_refresh_tokens_digest",
    refresh_tokens_table.c.digest,
    refresh_tokens_table.c.instance_id,
    unique=True,
)


class RefreshTokensProjection(Projection):
    """`oidc_refresh_tokens`, written in the push transaction."""

    name = "oidc_refresh_tokens"
    # 2: audience and actor of token exchange families.
    # 3: dpop_jkt.
    version = 3
    inline = True
    tables = (refresh_tokens_table,)

    @handles(RefreshTokenAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        statements: list[Any] = [
            Put(
                refresh_tokens_table,
                {
                    "instance_id": e.instance_id,
                    "id": p["token_id"],
                    "session_id": e.aggregate_id,
                    "digest": p["token_digest"],
                    "user_id": p["user_id"],
                    "client_id": p["client_id"],
                    "scopes": p.get("scopes", []),
                    "projects": p.get("projects", []),
                    "amr": p.get("amr", []),
                    "login_session_id": p.get("login_session_id", ""),
                    "audience": p.get("audience") or None,
                    "actor": p.get("actor") or None,
                    "auth_time": parse_time(p["auth_time"]),
                    "idle_expires_at": parse_time(p["idle_expiration"]),
                    "expires_at": parse_time(p["expiration"]),
                    "used": False,
                    "revoked": False,
                    "created_at": e.created_at,
                    "dpop_jkt": p.get("dpop_jkt", ""),
                },
            )
        ]
        if p.get("replaces"):
            statements.append(
                Patch(
                    refresh_tokens_table,
                    {"instance_id": e.instance_id, "id": p["replaces"]},
                    {"used": True},
                )
            )
        return statements

    @handles(OIDCSessionRevoked.TYPE)
    def revoked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            PatchWhere(
                refresh_tokens_table,
                {"instance_id": e.instance_id, "session_id": e.aggregate_id},
                {"revoked": True},
            )
        ]

    @handles("user.removed")
    def user_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                refresh_tokens_table, {"instance_id": e.instance_id, "user_id": e.aggregate_id}
            )
        ]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(refresh_tokens_table, {"instance_id": e.aggregate_id})]


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    token_id: str
    session_id: str
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    projects: tuple[str, ...]
    amr: tuple[str, ...]
    login_session_id: str
    auth_time: datetime
    idle_expires_at: datetime
    expires_at: datetime
    used: bool
    revoked: bool
    #: Token exchange families: the audience chosen (empty: from the scopes) and the actor.
    audience: tuple[str, ...] = ()
    actor: dict[str, Any] = field(default_factory=dict)
    dpop_jkt: str = ""


async def find_refresh_token(
    conn: AsyncConnection, instance_id: str, token: str
) -> RefreshRecord | None:
    """The record of a refresh token of this instance, by its digest (used or not)."""
    if not token or len(token) > 512:
        return None
    t = refresh_tokens_table
    row = (
        await conn.execute(
            select(t).where(t.c.instance_id == instance_id, t.c.digest == secrets.digest(token))
        )
    ).first()
    if row is None:
        return None
    return RefreshRecord(
        token_id=row.id,
        session_id=row.session_id,
        user_id=row.user_id,
        client_id=row.client_id,
        scopes=tuple(row.scopes),
        projects=tuple(row.projects),
        amr=tuple(row.amr),
        login_session_id=row.login_session_id,
        auth_time=row.auth_time,
        idle_expires_at=row.idle_expires_at,
        expires_at=row.expires_at,
        used=row.used,
        revoked=row.revoked,
        audience=tuple(row.audience or ()),
        actor=dict(row.actor or {}),
        dpop_jkt=row.dpop_jkt,
    )
