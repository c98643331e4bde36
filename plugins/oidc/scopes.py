"""Scopes: the OpenID Connect ones and ZITADEL's reserved scopes.

| scope                                           | effect                                      |
|-------------------------------------------------|---------------------------------------------|
| `openid`, `profile`, `email`, `phone`, `address` | claims in userinfo and ID tokens            |
| `offline_access`                                | a refresh token; dropped by the grants here |
| `urn:zitadel:iam:org:project:id:{id}:aud`       | project `{id}` joins the token's audience   |
| `urn:zitadel:iam:org:project:id:zitadel:aud`    | the management API joins the audience       |
| `urn:zitadel:iam:org:id:{id}`                   | the user must belong to org `{id}`          |
| `urn:zitadel:iam:org:domain:primary:{domain}`   | the user must belong to that domain's org   |
| `urn:zitadel:iam:org:project:roles`             | role claims for the audience's projects     |
| `urn:zitadel:iam:user:resourceowner`            | the user's org in the claims                |

Other scopes are not granted (they are dropped from the answer's `scope`).
A project or org that is not in the instance is `invalid_scope`.

The management API has no project of its own in donjon: its audience value
is the instance id (`api_audience`), where ZITADEL puts its IAM project's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity.orgs import orgs_table
from donjon.core.identity.projects import projects_table
from donjon.plugins.oidc.errors import InvalidScope

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
STANDARD = ("openid", "profile", "email", "phone", "address")
ROLES = "urn:zitadel:iam:org:project:roles"
RESOURCE_OWNER = "urn:zitadel:iam:user:resourceowner"
API_AUDIENCE_SCOPE = "urn:zitadel:iam:org:project:id:zitadel:aud"
PROJECT_AUDIENCE = re.compile(r"urn:zitadel:iam:org:project:id:([^:\s]+):aud")
ORG_ID = re.compile(r"urn:zitadel:iam:org:id:([^:\s]+)")
ORG_DOMAIN = re.compile(r"urn:zitadel:iam:org:domain:primary:(\S+)")
#: Every scope discovery lists (patterns shown with their placeholder).
SUPPORTED = (
    *STANDARD,
    OFFLINE_ACCESS,
    ROLES,
    RESOURCE_OWNER,
    API_AUDIENCE_SCOPE,
    "urn:zitadel:iam:org:project:id:{projectId}:aud",
    "urn:zitadel:iam:org:id:{orgId}",
    "urn:zitadel:iam:org:domain:primary:{domain}",
)
MAX_SCOPE = 4096


def api_audience(instance_id: str) -> str:
    """The audience value of the instance's management API."""
    return instance_id


@dataclass(frozen=True, slots=True)
class GrantedScope:
    """What a token request's scope grants."""

    scopes: tuple[str, ...]
    #: Project ids the token is for (besides its client).
    projects: tuple[str, ...]
    #: Whether the management API is an audience.
    api: bool

    @property
    def text(self) -> str:
        return " ".join(self.scopes)

    def audience(self, client_id: str, instance_id: str) -> list[str]:
        aud = [client_id, *self.projects]
        if self.api:
            aud.append(api_audience(instance_id))
        return list(dict.fromkeys(aud))


def split_scope(scope: str | None) -> list[str]:
    """The scope parameter's values, in order, without repeats."""
    if not scope:
        return []
    if len(scope) > MAX_SCOPE:
        raise InvalidScope(f"scope must be at most {MAX_SCOPE} characters")
    return list(dict.fromkeys(scope.split()))


async def grant_scope(
    conn: AsyncConnection, instance_id: str, requested: list[str], user_org: str
) -> GrantedScope:
    """Check the requested scopes for a user of `user_org`; the granted ones.

    InvalidScope for a project or org id that is not in the instance, or an
    org id the user does not belong to.
    """
    granted: list[str] = []
    projects: list[str] = []
    api = False
    for scope in requested:
        if scope in STANDARD or scope in (ROLES, RESOURCE_OWNER):
            granted.append(scope)
        elif scope == API_AUDIENCE_SCOPE:
            api = True
            granted.append(scope)
        elif match := PROJECT_AUDIENCE.fullmatch(scope):
            await check_project(conn, instance_id, match.group(1))
            projects.append(match.group(1))
            granted.append(scope)
        elif match := ORG_ID.fullmatch(scope):
            await check_org(conn, instance_id, match.group(1), user_org)
            granted.append(scope)
        elif match := ORG_DOMAIN.fullmatch(scope):
            if await org_of_domain(conn, instance_id, match.group(1)) != user_org:
                raise InvalidScope(f"the user does not belong to organization {match.group(1)}")
            granted.append(scope)
        # offline_access and unknown scopes are not granted here.
    return GrantedScope(tuple(granted), tuple(projects), api)


async def check_project(conn: AsyncConnection, instance_id: str, project_id: str) -> None:
    p = projects_table
    found = (
        await conn.execute(
            select(p.c.state).where(p.c.instance_id == instance_id, p.c.id == project_id)
        )
    ).first()
    if found is None:
        raise InvalidScope(f"project {project_id} does not exist")
    if found.state != "active":
        raise InvalidScope(f"project {project_id} is not active")


async def org_of_domain(conn: AsyncConnection, instance_id: str, domain: str) -> str:
    """The id of the org whose primary domain is `domain`; InvalidScope when none is."""
    o = orgs_table
    found = (
        await conn.execute(
            select(o.c.id).where(
                o.c.instance_id == instance_id, o.c.primary_domain == domain.lower()
            )
        )
    ).first()
    if found is None:
        raise InvalidScope(f"no organization has the primary domain {domain}")
    return str(found.id)


async def check_org(conn: AsyncConnection, instance_id: str, org_id: str, user_org: str) -> None:
    o = orgs_table
    found = (
        await conn.execute(select(o.c.id).where(o.c.instance_id == instance_id, o.c.id == org_id))
    ).first()
    if found is None:
        raise InvalidScope(f"organization {org_id} does not exist")
    if org_id != user_org:
        raise InvalidScope(f"the user does not belong to organization {org_id}")
