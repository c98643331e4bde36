"""Reads of users that commands, the API and the hosted login share: login names.

A user's login names are `username@<domain>` for each verified domain of its
org; the preferred one uses the org's primary domain.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity.orgs import org_domains_table
from donjon.core.identity.users import users_table


async def login_domains(
    conn: AsyncConnection, instance_id: str, org_ids: set[str]
) -> dict[str, tuple[str, list[str]]]:
    """By org: (primary domain, verified domains) — what login names are made of."""
    d = org_domains_table
    out: dict[str, tuple[str, list[str]]] = {org: ("", []) for org in org_ids}
    if not org_ids:
        return out
    rows = await conn.execute(
        select(d.c.org_id, d.c.domain, d.c.is_primary)
        .where(d.c.instance_id == instance_id, d.c.org_id.in_(org_ids), d.c.is_verified.is_(True))
        .order_by(d.c.org_id, d.c.is_primary.desc(), d.c.domain)
    )
    for org_id, domain, is_primary in rows:
        primary, verified = out[org_id]
        out[org_id] = (domain if is_primary else primary, [*verified, domain])
    return out


def login_names(username: str, domains: tuple[str, list[str]]) -> tuple[list[str], str]:
    """(every login name, the preferred one): `username@<verified domain>`, primary first."""
    primary, verified = domains
    names = [f"{username}@{domain}" for domain in verified]
    return names or [username], f"{username}@{primary}" if primary else username


async def user_by_login_name(
    conn: AsyncConnection, instance_id: str, login_name: str
) -> dict[str, object] | None:
    """The user whose login name (`username@<verified org domain>`) or user name this is.

    Both compare case-insensitively; user names are unique in the instance, so
    at most one user matches either way.
    """
    d = org_domains_table
    u = users_table
    wanted = login_name.strip().lower()
    by_domain = (
        select(u)
        .join(d, (d.c.instance_id == u.c.instance_id) & (d.c.org_id == u.c.resource_owner))
        .where(
            u.c.instance_id == instance_id,
            d.c.is_verified.is_(True),
            func.lower(u.c.username + "@" + d.c.domain) == wanted,
        )
    )
    row = (await conn.execute(by_domain)).first()
    if row is None:
        row = (
            await conn.execute(
                select(u).where(u.c.instance_id == instance_id, func.lower(u.c.username) == wanted)
            )
        ).first()
    return dict(row._mapping) if row else None
