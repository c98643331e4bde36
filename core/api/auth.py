"""Who calls the management API, and what they may do.

`Authorization: Bearer <token>` names the caller, or `Authorization: DPoP
<token>` with a `DPoP` proof header for a sender-constrained OAuth access
token (RFC 9449). The token is offered to the `resolve_principal` hook with
a `Credential` (the scheme, and what a proof is checked against): the core
answers last, for personal access tokens and session tokens (SHA-256
lookups, Bearer only); the OIDC plugin answers for its access tokens. A
token that nobody recognises, that expired, or whose user is not active, is
`unauthenticated` (401).

Permissions come from memberships (see `donjon.core.identity.members`): an
instance membership grants on the whole instance, an org membership on that
org's resources, a project membership on that project. A call without the
permission is `permission_denied` (403); a resource in another instance is
never found at all, because every read is scoped to the call's instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from donjon.core.api.connect import Call, ConnectError
from donjon.core.identity import secrets
from donjon.core.identity.members import INSTANCE, ORG, PROJECT, grants, memberships_of
from donjon.core.identity.users import (
    ACTIVE,
    INITIAL,
    personal_access_tokens_table,
    users_table,
)
from donjon.core.plugins import first_result

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user of the instance, and its org."""

    user_id: str
    org_id: str
    instance_id: str
    # How the caller proved who it is: pat, access_token, session, ...
    method: str = "pat"
    # Scopes the token carries (OAuth access tokens); empty for PATs.
    scopes: tuple[str, ...] = ()


BEARER, DPOP = "bearer", "dpop"
SCHEMES = (BEARER, DPOP)


@dataclass(frozen=True, slots=True)
class Credential:
    """How a management API call presents its token, for `resolve_principal`."""

    #: `bearer` or `dpop` (the `Authorization` scheme, lower-cased).
    scheme: str
    token: str
    #: The HTTP method and path of the call (what a DPoP proof's htm and htu name).
    method: str = "POST"
    path: str = ""
    #: The request headers, names lower-cased.
    headers: dict[str, str] = field(default_factory=dict)
    #: Every `DPoP` header value (RFC 9449 allows one; the checker refuses more).
    proofs: tuple[str, ...] = ()


def presented_token(headers: dict[str, str]) -> tuple[str, str] | None:
    """(scheme, token) of `Authorization: Bearer|DPoP <token>`, else None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in SCHEMES or not token:
        return None
    return scheme, token


def bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(
    runtime: Runtime,
    instance_id: str,
    headers: dict[str, str],
    required: bool = True,
    *,
    method: str = "POST",
    path: str = "",
    proofs: tuple[str, ...] = (),
) -> Principal | None:
    presented = presented_token(headers)
    if presented is None:
        if not required:
            return None
        raise ConnectError(
            "unauthenticated", "send a personal access token or an access token as Bearer"
        )
    scheme, token = presented
    credential = Credential(scheme, token, method, path, headers, proofs)
    principal = await first_result(
        runtime.pm.hook.resolve_principal,
        token=token,
        instance_id=instance_id,
        runtime=runtime,
        credential=credential,
    )
    if principal is None:
        raise ConnectError("unauthenticated", "the token is invalid or expired")
    return principal


async def principal_from_pat(runtime: Runtime, instance_id: str, token: str) -> Principal | None:
    """The user a personal access token of this instance belongs to, if it is valid."""
    pats, users = personal_access_tokens_table, users_table
    async with runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(pats.c.user_id, pats.c.expiration, users.c.resource_owner, users.c.state)
                .join(
                    users,
                    (users.c.instance_id == pats.c.instance_id) & (users.c.id == pats.c.user_id),
                )
                .where(pats.c.instance_id == instance_id, pats.c.digest == secrets.digest(token))
            )
        ).first()
    if row is None or row.state not in (ACTIVE, INITIAL):
        return None
    if row.expiration is not None and row.expiration <= datetime.now(UTC):
        return None
    return Principal(row.user_id, row.resource_owner, instance_id, "pat")


async def principal_from_session_token(
    runtime: Runtime, instance_id: str, token: str
) -> Principal | None:
    """The user a session token of this instance authenticates (see
    `sessions.authenticating_session`: a checked user and factor, not expired)."""
    from donjon.core.identity.sessions import authenticating_session

    async with runtime.db.read() as conn:
        row = await authenticating_session(conn, instance_id, token)
    if row is None:
        return None
    return Principal(row["user_id"], row["user_resource_owner"], instance_id, "session")


async def principal_from_bearer(runtime: Runtime, instance_id: str, token: str) -> Principal | None:
    """The core's answer for a Bearer token: a personal access token, else a session token."""
    principal = await principal_from_pat(runtime, instance_id, token)
    if principal is None:
        principal = await principal_from_session_token(runtime, instance_id, token)
    return principal


async def _memberships(call: Call):  # type: ignore[no-untyped-def]
    if call.memberships is None:
        if call.principal is None:
            call.memberships = []
        else:
            async with call.runtime.db.read() as conn:
                call.memberships = await memberships_of(
                    conn, call.instance_id, call.principal.user_id
                )
    return call.memberships


async def check_permission(
    call: Call, permission: str, *, org_id: str | None = None, project_id: str | None = None
) -> None:
    for m in await _memberships(call):
        if not any(grants(role, permission) for role in m.roles):
            continue
        if m.scope == INSTANCE:
            return
        if m.scope == ORG and org_id is not None and m.resource_id == org_id:
            return
        if m.scope == PROJECT and project_id is not None and m.resource_id == project_id:
            return
    raise ConnectError(
        "permission_denied", f"missing permission {permission} (Errors.AuthZ.NoPermission)"
    )


async def orgs_with_permission(call: Call, permission: str) -> set[str] | None:
    """The orgs on which the caller holds `permission`; None when it holds it instance-wide."""
    orgs: set[str] = set()
    for m in await _memberships(call):
        if not any(grants(role, permission) for role in m.roles):
            continue
        if m.scope == INSTANCE:
            return None
        if m.scope == ORG:
            orgs.add(m.resource_id)
    return orgs


async def projects_with_permission(call: Call, permission: str) -> set[str]:
    """The projects on which the caller holds `permission` through a project membership."""
    return {
        m.resource_id
        for m in await _memberships(call)
        if m.scope == PROJECT and any(grants(role, permission) for role in m.roles)
    }
