"""Checking a presented access token: is it ours, this instance's, and still good?

A token with three dot-separated parts is a JWT: its `kid` must be one of
this instance's published web keys (another instance's token names a key
that is not), the signature must verify with that key's algorithm only, and
its `jti` must be a token recorded in this instance. Anything else is looked
up as an opaque token by its SHA-256 digest within the instance. Either way
the record must not be revoked or expired, and its user must exist and be
active. Returns None for every failure: callers answer "inactive" or 401
without saying which check failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import select

from donjon.core.identity import secrets
from donjon.core.identity.users import ACTIVE, INITIAL, users_table
from donjon.plugins.oidc.keys.generate import public_key_of
from donjon.plugins.oidc.tokens.events import JWT, access_tokens_table

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from donjon.plugins.oidc.provider import Provider


@dataclass(frozen=True, slots=True)
class ActiveToken:
    """A valid access token's record, with its user's state and names."""

    token_id: str
    session_id: str
    token_type: str
    user_id: str
    org_id: str
    client_id: str
    audience: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    username: str
    user_type: str
    auth_methods: tuple[str, ...] = ()
    #: RFC 8693 `act` of an exchanged token (empty: none).
    actor: dict[str, Any] = field(default_factory=dict)
    #: The DPoP key's thumbprint the token is bound to (RFC 9449); "" for Bearer.
    dpop_jkt: str = ""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def active_token(
    provider: Provider, instance_id: str, token: str, conn: AsyncConnection | None = None
) -> ActiveToken | None:
    """The record of `token` when it is a valid access token of `instance_id`, else None
    (looked up in `conn`, a read transaction of the caller's, when given)."""
    if not token or len(token) > 8192:
        return None
    t = access_tokens_table
    if looks_like_jwt(token):
        token_id = await _verified_jwt_id(provider, instance_id, token)
        if token_id is None:
            return None
        where = (t.c.instance_id == instance_id) & (t.c.id == token_id) & (t.c.token_type == JWT)
    else:
        where = (t.c.instance_id == instance_id) & (t.c.digest == secrets.digest(token))
    u = users_table
    async with provider.read(conn) as c:
        row = (
            await c.execute(
                select(t, u.c.state.label("user_state"), u.c.username, u.c.type.label("user_type"))
                .join(u, (u.c.instance_id == t.c.instance_id) & (u.c.id == t.c.user_id))
                .where(where)
            )
        ).first()
    if row is None or row.revoked or row.user_state not in (ACTIVE, INITIAL):
        return None
    if row.expires_at <= datetime.now(UTC):
        return None
    return ActiveToken(
        token_id=row.id,
        session_id=row.session_id,
        token_type=row.token_type,
        user_id=row.user_id,
        org_id=row.org_id,
        client_id=row.client_id,
        audience=tuple(row.audience),
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        username=row.username,
        user_type=row.user_type,
        auth_methods=tuple(row.auth_methods),
        actor=dict(row.actor or {}),
        dpop_jkt=row.dpop_jkt,
    )


async def _verified_jwt_id(provider: Provider, instance_id: str, token: str) -> str | None:
    """The `jti` of a JWT signed by one of the instance's web keys; None otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid, typ = header.get("kid"), header.get("typ")
    if not isinstance(kid, str) or not isinstance(typ, str):
        return None
    if typ.lower() not in ("at+jwt", "application/at+jwt"):
        return None
    key = await provider.keys.verification_key(instance_id, kid)
    if key is None or header.get("alg") != key.alg:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=public_key_of(key.public_jwk),  # type: ignore[arg-type]
            algorithms=[key.alg],
            options={"verify_aud": False, "require": ["exp", "jti"]},
        )
    except jwt.PyJWTError:
        return None
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else None
