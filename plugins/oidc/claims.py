"""User claims, by scope, in donjon's vocabulary mapped to OpenID Connect's names.

The same claims serve userinfo, ID tokens and introspection:

- always `sub`;
- `profile`: `name`, `given_name`, `family_name`, `nickname`, `gender`,
  `locale`, `preferred_username` (the preferred login name), `updated_at`;
  a machine user has `name` and `preferred_username`;
- `email`: `email`, `email_verified`; `phone`: `phone_number`,
  `phone_number_verified` (humans);
- `urn:zitadel:iam:user:resourceowner`: the user's org as
  `urn:zitadel:iam:user:resourceowner:{id,name,primary_domain}`;
- `urn:zitadel:iam:org:project:roles`: the user's roles on each project of
  the audience, as ZITADEL shapes them: `{role: {org_id: org_domain}}` under
  `urn:zitadel:iam:org:project:roles` and `urn:zitadel:iam:org:project:{id}:roles`.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity.authorizations import (
    ACTIVE,
    authorization_roles_table,
    authorizations_table,
)
from donjon.core.identity.orgs import orgs_table
from donjon.core.identity.user_reads import login_domains, login_names
from donjon.core.identity.users import HUMAN, users_table
from donjon.plugins.oidc.scopes import RESOURCE_OWNER, ROLES

log = logging.getLogger(__name__)


async def load_user(conn: AsyncConnection, instance_id: str, user_id: str) -> dict[str, Any] | None:
    u = users_table
    row = (
        await conn.execute(select(u).where(u.c.instance_id == instance_id, u.c.id == user_id))
    ).first()
    return dict(row._mapping) if row else None


async def preferred_login_name(
    conn: AsyncConnection, instance_id: str, user: dict[str, Any]
) -> str:
    org = user["resource_owner"]
    domains = await login_domains(conn, instance_id, {org})
    return login_names(user["username"], domains[org])[1]


async def user_claims(
    conn: AsyncConnection,
    instance_id: str,
    user: dict[str, Any],
    scopes: list[str] | tuple[str, ...],
) -> dict[str, Any]:
    """The claims of `user` that `scopes` ask for (see the module docstring)."""
    claims: dict[str, Any] = {"sub": user["id"]}
    human = user["type"] == HUMAN
    if "profile" in scopes:
        claims["preferred_username"] = await preferred_login_name(conn, instance_id, user)
        claims["updated_at"] = int(user["changed_at"].timestamp())
        if human:
            full = f"{user['first_name']} {user['last_name']}".strip()
            claims["name"] = user["display_name"] or full
            claims["given_name"] = user["first_name"]
            claims["family_name"] = user["last_name"]
            for claim, column in (
                ("nickname", "nick_name"),
                ("gender", "gender"),
                ("locale", "preferred_language"),
            ):
                if user[column]:
                    claims[claim] = user[column]
        else:
            claims["name"] = user["name"]
    if human and "email" in scopes and user["email"]:
        claims["email"] = user["email"]
        claims["email_verified"] = bool(user["email_verified"])
    if human and "phone" in scopes and user["phone"]:
        claims["phone_number"] = user["phone"]
        claims["phone_number_verified"] = bool(user["phone_verified"])
    if RESOURCE_OWNER in scopes:
        claims.update(await resource_owner_claims(conn, instance_id, user["resource_owner"]))
    return claims


async def resource_owner_claims(
    conn: AsyncConnection, instance_id: str, org_id: str
) -> dict[str, Any]:
    o = orgs_table
    org = (
        await conn.execute(select(o).where(o.c.instance_id == instance_id, o.c.id == org_id))
    ).first()
    prefix = RESOURCE_OWNER
    return {
        f"{prefix}:id": org_id,
        f"{prefix}:name": org.name if org else "",
        f"{prefix}:primary_domain": org.primary_domain if org else "",
    }


async def role_claims(
    conn: AsyncConnection, instance_id: str, user_id: str, project_ids: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """ZITADEL's role claims for the user's active authorizations on `project_ids`;
    {} when it has no roles there."""
    if not project_ids:
        return {}
    a, r, o = authorizations_table, authorization_roles_table, orgs_table
    rows = await conn.execute(
        select(r.c.project_id, r.c.key, a.c.resource_owner, o.c.primary_domain)
        .join(a, (a.c.instance_id == r.c.instance_id) & (a.c.id == r.c.authorization_id))
        .outerjoin(o, (o.c.instance_id == a.c.instance_id) & (o.c.id == a.c.resource_owner))
        .where(
            r.c.instance_id == instance_id,
            r.c.user_id == user_id,
            r.c.project_id.in_(list(project_ids)),
            a.c.state == ACTIVE,
        )
        .order_by(r.c.project_id, r.c.key)
    )
    claims: dict[str, Any] = {}
    for project_id, key, org_id, domain in rows:
        for name in (ROLES, f"urn:zitadel:iam:org:project:{project_id}:roles"):
            claims.setdefault(name, {}).setdefault(key, {})[org_id] = domain or ""
    return claims


def wants_roles(scopes: list[str] | tuple[str, ...]) -> bool:
    return ROLES in scopes


# Claims no `customize_token` implementation may set (ZITADEL refuses the same).
RESERVED_CLAIMS = frozenset(
    {
        "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "auth_time", "azp",
        "amr", "acr", "sid", "at_hash", "c_hash", "client_id", "scope", "act", "cnf",
    }
)  # fmt: skip
RESERVED_PREFIX = "urn:zitadel:iam:"


async def customized(
    runtime: Any,
    kind: str,
    claims: dict[str, Any],
    *,
    user_id: str,
    client_id: str,
    instance_id: str,
) -> dict[str, Any]:
    """The claims `customize_token` implementations add (reserved ones dropped and logged).

    Raises AccessDenied when one refuses the token.
    """
    from donjon.core.errors import TokenRefused
    from donjon.core.plugins import collect_results
    from donjon.plugins.oidc.errors import AccessDenied

    hook = runtime.pm.hook.customize_token
    if not hook.get_hookimpls():
        return {}
    try:
        results = await collect_results(
            hook,
            kind=kind,
            claims=dict(claims),
            user_id=user_id,
            client_id=client_id,
            instance_id=instance_id,
            runtime=runtime,
        )
    except TokenRefused as exc:
        raise AccessDenied(str(exc)) from None
    added: dict[str, Any] = {}
    for result in results:
        for key, value in (result or {}).items():
            if key in RESERVED_CLAIMS or str(key).startswith(RESERVED_PREFIX):
                log.warning("customize_token: the reserved claim %r is ignored", key)
                continue
            added[key] = value
    return added
