"""Impersonation by token exchange (RFC 8693 with an actor): who may, and its audit event.

Rules, as in ZITADEL:

- the instance's security settings enable it (`enableImpersonation`,
  SettingsService SetSecuritySettings); off by default;
- the actor holds the `impersonation` permission on the subject's org: the
  instance roles `IAM_END_USER_IMPERSONATOR` / `IAM_ADMIN_IMPERSONATOR`, or
  the org roles `ORG_END_USER_IMPERSONATOR` / `ORG_ADMIN_IMPERSONATOR` on the
  subject's org. A subject who administers anything (holds any membership)
  needs `admin.impersonation`, which only the `*_ADMIN_IMPERSONATOR` roles
  hold. No owner role grants either (see `members.EXPLICIT_ONLY`).

Each impersonation is recorded as `user.impersonated` on the subject's user
aggregate, in the same push as the tokens it gave: the client and the actor
(`act`, RFC 8693 §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import Aggregate, AggregateChanges, Event
from donjon.core.identity import members, policies
from donjon.plugins.oidc.errors import InvalidRequest

USER_AGGREGATE = "user"


@dataclass(frozen=True)
class UserImpersonated(Event):
    """An actor got tokens for this user by token exchange."""

    TYPE = "user.impersonated"
    AGGREGATE_TYPE = USER_AGGREGATE
    client_id: str
    # RFC 8693 `act`: {"iss", "sub"} of the actor, with a nested `act` for a chain.
    actor: dict[str, Any] = field(default_factory=dict)


EVENT_TYPES: list[type[Event]] = [UserImpersonated]


class ImpersonationDenied(InvalidRequest):
    """RFC 8693 §2.2.2: a request unacceptable by policy is `invalid_request`."""


async def check_policy(conn: AsyncConnection, instance_id: str) -> None:
    """ImpersonationDenied unless the instance's security settings enable impersonation."""
    if not (await policies.security_policy(conn, instance_id)).policy.enable_impersonation:
        raise ImpersonationDenied(
            "impersonation is disabled: enable it in the instance's security settings"
            " (SettingsService SetSecuritySettings enableImpersonation)"
        )


async def check_actor_may_impersonate(
    conn: AsyncConnection, instance_id: str, actor_id: str, subject: dict[str, Any]
) -> None:
    """ImpersonationDenied unless `actor_id` may impersonate the user row `subject`."""
    administers = bool(await members.memberships_of(conn, instance_id, subject["id"]))
    needed = members.ADMIN_IMPERSONATION if administers else members.IMPERSONATION
    for m in await members.memberships_of(conn, instance_id, actor_id):
        if not any(members.grants(role, needed) for role in m.roles):
            continue
        if m.scope == members.INSTANCE:
            return
        if m.scope == members.ORG and m.resource_id == subject["resource_owner"]:
            return
    kind = "ADMIN" if administers else "END_USER"
    raise ImpersonationDenied(
        f"the actor may not impersonate this user (needs IAM_{kind}_IMPERSONATOR, or"
        f" ORG_{kind}_IMPERSONATOR on the user's organization)"
    )


def impersonated(
    instance_id: str, subject: dict[str, Any], client_id: str, actor: dict[str, Any]
) -> AggregateChanges:
    """The audit event of one impersonation, for the push that issues the tokens."""
    return AggregateChanges(
        Aggregate(USER_AGGREGATE, subject["id"], instance_id, subject["resource_owner"]),
        [UserImpersonated(client_id=client_id, actor=actor)],
    )
