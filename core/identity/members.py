"""Members: administrators of the instance, of an org or of a project, and what they may do.

A member is a user with roles on one resource. Roles carry ZITADEL's names
(`IAM_OWNER`, `ORG_OWNER`, `PROJECT_OWNER`, ...) and map to permissions
(`user.write`, `project.app.read`, ...) through `ROLE_PERMISSIONS`, the
equivalent of ZITADEL's `InternalAuthZ.RolePermissionMappings`. An
instance-level role grants its permissions on everything in the instance, an
org role on that org's resources, a project role on that project.

Member events live on the aggregate of the resource (`instance.member.added`
on the instance, `org.member.added` on the org, `project.member.added` on the
project), as in ZITADEL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import JSON, Column, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.writemodel import WriteModel
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

INSTANCE, ORG, PROJECT = "instance", "org", "project"
SCOPES = (INSTANCE, ORG, PROJECT)

# Permissions by role. A permission `x.y` is granted by `x.y` or by a
# wildcard prefix `x.*`; `*` grants everything except the permissions in
# `EXPLICIT_ONLY`, which a role must name (impersonating users is never a
# side effect of being an owner, as in ZITADEL).
IMPERSONATION = "impersonation"
ADMIN_IMPERSONATION = "admin.impersonation"
EXPLICIT_ONLY = frozenset({IMPERSONATION, ADMIN_IMPERSONATION})

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # instance roles
    "IAM_OWNER": frozenset({"*"}),
    "IAM_OWNER_VIEWER": frozenset(
        {
            "iam.read",
            "iam.policy.read",
            "iam.member.read",
            "org.read",
            "org.member.read",
            "user.read",
            "user.grant.read",
            "user.membership.read",
            "project.read",
            "project.role.read",
            "project.app.read",
            "project.member.read",
            "policy.read",
            "events.read",
            "session.read",
            "action.target.read",
            "action.execution.read",
            "iam.web_key.read",
        }
    ),
    "IAM_ORG_MANAGER": frozenset(
        {"org.*", "user.*", "project.*", "policy.*", "iam.read", "events.read"}
    ),
    "IAM_USER_MANAGER": frozenset({"org.read", "user.*", "iam.read", "policy.read"}),
    "IAM_LOGIN_CLIENT": frozenset(
        {
            "iam.read",
            "iam.policy.read",
            "org.read",
            "policy.read",
            "user.read",
            "user.write",
            "user.credential.write",
            "user.grant.read",
            "project.read",
            "project.app.read",
            "session.*",
            "session.link",
        }
    ),
    # Token exchange impersonation: of users who administer nothing (END_USER),
    # and of administrators too (ADMIN).
    "IAM_END_USER_IMPERSONATOR": frozenset({IMPERSONATION}),
    "IAM_ADMIN_IMPERSONATOR": frozenset({IMPERSONATION, ADMIN_IMPERSONATION}),
    # org roles
    "ORG_OWNER": frozenset(
        {
            "org.read",
            "org.write",
            "org.delete",
            "org.member.*",
            "org.domain.*",
            "user.*",
            "project.*",
            "policy.*",
            "events.read",
        }
    ),
    "ORG_OWNER_VIEWER": frozenset(
        {
            "org.read",
            "org.member.read",
            "user.read",
            "user.grant.read",
            "user.membership.read",
            "project.read",
            "project.role.read",
            "project.app.read",
            "project.member.read",
            "policy.read",
            "events.read",
        }
    ),
    "ORG_USER_MANAGER": frozenset({"org.read", "user.*", "project.read", "project.role.read"}),
    "ORG_USER_PERMISSION_EDITOR": frozenset(
        {"org.read", "user.read", "user.grant.*", "project.read", "project.role.read"}
    ),
    "ORG_PROJECT_PERMISSION_EDITOR": frozenset(
        {"org.read", "project.read", "project.grant.*", "project.role.read"}
    ),
    "ORG_PROJECT_CREATOR": frozenset({"org.read", "project.create"}),
    "ORG_END_USER_IMPERSONATOR": frozenset({IMPERSONATION}),
    "ORG_ADMIN_IMPERSONATOR": frozenset({IMPERSONATION, ADMIN_IMPERSONATION}),
    # project roles
    "PROJECT_OWNER": frozenset(
        {
            "project.read",
            "project.write",
            "project.delete",
            "project.role.*",
            "project.app.*",
            "project.member.*",
            "project.grant.*",
            "user.grant.*",
        }
    ),
    "PROJECT_OWNER_VIEWER": frozenset(
        {
            "project.read",
            "project.role.read",
            "project.app.read",
            "project.member.read",
            "project.grant.read",
            "user.grant.read",
        }
    ),
}

ROLES_BY_SCOPE: dict[str, frozenset[str]] = {
    INSTANCE: frozenset(r for r in ROLE_PERMISSIONS if r.startswith("IAM_")),
    ORG: frozenset(r for r in ROLE_PERMISSIONS if r.startswith("ORG_")),
    PROJECT: frozenset(r for r in ROLE_PERMISSIONS if r.startswith("PROJECT_")),
}


def grants(role: str, permission: str) -> bool:
    """Whether `role` includes `permission` (wildcards `*` and `prefix.*` included)."""
    held = ROLE_PERMISSIONS.get(role, frozenset())
    if permission in held:
        return True
    if permission in EXPLICIT_ONLY:
        return False
    if "*" in held:
        return True
    parts = permission.split(".")
    return any(".".join(parts[:i]) + ".*" in held for i in range(1, len(parts)))


@dataclass(frozen=True)
class MemberRolesSet(Event):
    """A member added or changed: the user and all its roles on the resource."""

    user_id: str
    roles: list[str]


@dataclass(frozen=True)
class MemberRemoved(Event):
    """A member removed from the resource."""

    user_id: str


@dataclass(frozen=True)
class InstanceMemberAdded(MemberRolesSet):
    TYPE = "instance.member.added"
    AGGREGATE_TYPE = INSTANCE


@dataclass(frozen=True)
class InstanceMemberChanged(MemberRolesSet):
    TYPE = "instance.member.changed"
    AGGREGATE_TYPE = INSTANCE


@dataclass(frozen=True)
class InstanceMemberRemoved(MemberRemoved):
    TYPE = "instance.member.removed"
    AGGREGATE_TYPE = INSTANCE


@dataclass(frozen=True)
class OrgMemberAdded(MemberRolesSet):
    TYPE = "org.member.added"
    AGGREGATE_TYPE = ORG


@dataclass(frozen=True)
class OrgMemberChanged(MemberRolesSet):
    TYPE = "org.member.changed"
    AGGREGATE_TYPE = ORG


@dataclass(frozen=True)
class OrgMemberRemoved(MemberRemoved):
    TYPE = "org.member.removed"
    AGGREGATE_TYPE = ORG


@dataclass(frozen=True)
class ProjectMemberAdded(MemberRolesSet):
    TYPE = "project.member.added"
    AGGREGATE_TYPE = PROJECT


@dataclass(frozen=True)
class ProjectMemberChanged(MemberRolesSet):
    TYPE = "project.member.changed"
    AGGREGATE_TYPE = PROJECT


@dataclass(frozen=True)
class ProjectMemberRemoved(MemberRemoved):
    TYPE = "project.member.removed"
    AGGREGATE_TYPE = PROJECT


ADDED = {INSTANCE: InstanceMemberAdded, ORG: OrgMemberAdded, PROJECT: ProjectMemberAdded}
CHANGED = {INSTANCE: InstanceMemberChanged, ORG: OrgMemberChanged, PROJECT: ProjectMemberChanged}
REMOVED = {INSTANCE: InstanceMemberRemoved, ORG: OrgMemberRemoved, PROJECT: ProjectMemberRemoved}

EVENT_TYPES: list[type[Event]] = [*ADDED.values(), *CHANGED.values(), *REMOVED.values()]

members_table = Table(
    "members",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("scope", Text, primary_key=True),  # instance | org | project
    Column("resource_id", Text, primary_key=True),
    Column("user_id", Text, primary_key=True, index=True),
    Column("roles", JSON, nullable=False),
    # The org owning the resource (the instance id for instance members).
    Column("resource_owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)


def _key(e: StoredEvent) -> dict[str, str]:
    """A member's row: the event's aggregate (instance, org or project) is its scope."""
    return {
        "instance_id": e.instance_id,
        "scope": e.aggregate_type,
        "resource_id": e.aggregate_id,
        "user_id": e.payload["user_id"],
    }


class MembersProjection(Projection):
    name = "members"
    version = 1
    inline = True
    tables = (members_table,)

    @handles(*(event.TYPE for event in ADDED.values()))
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                members_table,
                {
                    **_key(e),
                    "roles": list(e.payload["roles"]),
                    "resource_owner": e.owner,
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(*(event.TYPE for event in CHANGED.values()))
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                members_table,
                _key(e),
                {
                    "roles": list(e.payload["roles"]),
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(*(event.TYPE for event in REMOVED.values()))
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(members_table, _key(e))]

    # A removed user, org or project takes its memberships with it.
    @handles("user.removed")
    def user_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(members_table, {"instance_id": e.instance_id, "user_id": e.aggregate_id})
        ]

    @handles("org.removed")
    def org_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                members_table, {"instance_id": e.instance_id, "resource_owner": e.aggregate_id}
            ),
            RemoveWhere(
                members_table,
                {"instance_id": e.instance_id, "scope": ORG, "resource_id": e.aggregate_id},
            ),
        ]

    @handles("project.removed")
    def project_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                members_table,
                {"instance_id": e.instance_id, "scope": PROJECT, "resource_id": e.aggregate_id},
            )
        ]


def check_roles(scope: str, roles: list[str]) -> list[str]:
    """The roles, deduplicated in order; ValueError naming any that `scope` does not know."""
    unknown = [r for r in roles if r not in ROLES_BY_SCOPE[scope]]
    if unknown:
        known = ", ".join(sorted(ROLES_BY_SCOPE[scope]))
        raise ValueError(f"unknown {scope} roles {', '.join(unknown)} (known: {known})")
    if not roles:
        raise ValueError("at least one role is required")
    return list(dict.fromkeys(roles))


def add_member(
    scope: str, instance_id: str, resource_id: str, owner: str, user_id: str, roles: list[str]
) -> AggregateChanges:
    """The events making `user_id` a member with `roles` (checked by `check_roles`)."""
    return AggregateChanges(
        Aggregate(scope, resource_id, instance_id, owner),
        [ADDED[scope](user_id=user_id, roles=check_roles(scope, roles))],
    )


@dataclass(frozen=True, slots=True)
class Membership:
    scope: str
    resource_id: str
    resource_owner: str
    roles: tuple[str, ...]


async def memberships_of(conn: AsyncConnection, instance_id: str, user_id: str) -> list[Membership]:
    rows = await conn.execute(
        select(
            members_table.c.scope,
            members_table.c.resource_id,
            members_table.c.resource_owner,
            members_table.c.roles,
        ).where(members_table.c.instance_id == instance_id, members_table.c.user_id == user_id)
    )
    return [Membership(r.scope, r.resource_id, r.resource_owner, tuple(r.roles)) for r in rows]


# -- the administrators API (InternalPermissionService) ----------------------------------


class _ResourceMembers(WriteModel):
    """The members of one resource (instance, org or project) as commands see them.

    A subclass names its `scope`; the member events of that scope are its reducers.
    """

    scope: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.aggregate_type = cls.scope
        cls._reducers = {
            **cls._reducers,
            ADDED[cls.scope].TYPE: "on_set",
            CHANGED[cls.scope].TYPE: "on_set",
            REMOVED[cls.scope].TYPE: "on_removed",
        }

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.members: dict[str, list[str]] = {}  # user id -> roles

    def on_set(self, e: StoredEvent) -> None:
        self.members[e.payload["user_id"]] = list(e.payload["roles"])

    def on_removed(self, e: StoredEvent) -> None:
        self.members.pop(e.payload["user_id"], None)


class InstanceMembers(_ResourceMembers):
    scope = INSTANCE


class OrgMembers(_ResourceMembers):
    scope = ORG


class ProjectMembers(_ResourceMembers):
    scope = PROJECT


MEMBER_STATES: dict[str, type[_ResourceMembers]] = {
    INSTANCE: InstanceMembers,
    ORG: OrgMembers,
    PROJECT: ProjectMembers,
}


def add_member_to(
    state: _ResourceMembers, owner: str, user_id: str, roles: list[str]
) -> AggregateChanges:
    """Make `user_id` a member (ValueError from `check_roles`), against the resource's state."""
    return AggregateChanges(
        state.aggregate(owner),
        [ADDED[state.scope](user_id=user_id, roles=check_roles(state.scope, roles))],
        expected_sequence=state.sequence,
    )


def change_member(
    state: _ResourceMembers, user_id: str, roles: list[str]
) -> AggregateChanges | None:
    """Replace a member's roles; None when they are the same."""
    roles = check_roles(state.scope, roles)
    if sorted(roles) == sorted(state.members[user_id]):
        return None
    return AggregateChanges(
        state.aggregate(),
        [CHANGED[state.scope](user_id=user_id, roles=roles)],
        expected_sequence=state.sequence,
    )


def remove_member(state: _ResourceMembers, user_id: str) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(),
        [REMOVED[state.scope](user_id=user_id)],
        expected_sequence=state.sequence,
    )


async def instance_owners(conn: AsyncConnection, instance_id: str) -> set[str]:
    """The users holding IAM_OWNER on the instance (removed users are gone from the read model)."""
    rows = await conn.execute(
        select(members_table.c.user_id, members_table.c.roles).where(
            members_table.c.instance_id == instance_id, members_table.c.scope == INSTANCE
        )
    )
    return {r.user_id for r in rows if "IAM_OWNER" in r.roles}
