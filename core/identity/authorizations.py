"""Authorizations (ZITADEL's user grants): a user's roles on a project.

One `usergrant` aggregate per authorization, owned by the org that grants it
(the project's owner). A user has at most one authorization per project:
the pair is claimed as a unique value when it is created and freed when it
is removed. Events carry ZITADEL's names: `user.grant.added`, `.changed`
(the role keys are replaced), `.deactivated`, `.reactivated`, `.removed`.

The read model follows the things an authorization hangs on: a removed user
(`user.removed`) or project (`project.removed`) takes its authorizations
with it, and a removed role (`project.role.removed`) is dropped from every
authorization holding it. Role keys live in their own table so they can be
searched and dropped one by one. `roles_of` is what token claims read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Column, Index, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import (
    AddUnique,
    Aggregate,
    AggregateChanges,
    Event,
    RemoveUnique,
    StoredEvent,
)
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import Put, Remove, RemoveWhere

AGGREGATE = "usergrant"
ACTIVE, INACTIVE, REMOVED = "active", "inactive", "removed"

UNIQUE_GRANT = "user_grant"
GRANT_TAKEN = (
    "Errors.UserGrant.AlreadyExists: the user already has an authorization on this project"
)


def grant_unique(project_id: str, user_id: str, project_grant_id: str = "") -> str:
    """The unique value of a user's authorization on a project (or project grant)."""
    return f"{project_id}:{project_grant_id}:{user_id}"


@dataclass(frozen=True)
class UserGrantAdded(Event):
    TYPE = "user.grant.added"
    AGGREGATE_TYPE = AGGREGATE
    user_id: str
    project_id: str
    role_keys: list[str] = field(default_factory=list)
    project_grant_id: str = ""


@dataclass(frozen=True)
class UserGrantChanged(Event):
    TYPE = "user.grant.changed"
    AGGREGATE_TYPE = AGGREGATE
    user_id: str
    project_id: str
    role_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UserGrantDeactivated(Event):
    TYPE = "user.grant.deactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserGrantReactivated(Event):
    TYPE = "user.grant.reactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserGrantRemoved(Event):
    TYPE = "user.grant.removed"
    AGGREGATE_TYPE = AGGREGATE
    user_id: str
    project_id: str
    project_grant_id: str = ""


EVENT_TYPES: list[type[Event]] = [
    UserGrantAdded,
    UserGrantChanged,
    UserGrantDeactivated,
    UserGrantReactivated,
    UserGrantRemoved,
]

authorizations_table = Table(
    "authorizations",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("project_id", Text, nullable=False),
    Column("project_grant_id", Text, nullable=False),
    # The org that grants the authorization (the project's owner).
    Column("resource_owner", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)
Index("authorizations_user", authorizations_table.c.instance_id, authorizations_table.c.user_id)
Index(
    "authorizations_project", authorizations_table.c.instance_id, authorizations_table.c.project_id
)

# One row per role key of an authorization; user, project and owner are
# repeated so that a cascade can drop rows without a join.
authorization_roles_table = Table(
    "authorization_roles",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("authorization_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("project_id", Text, nullable=False),
    Column("resource_owner", Text, nullable=False),
)
Index(
    "authorization_roles_project_key",
    authorization_roles_table.c.instance_id,
    authorization_roles_table.c.project_id,
    authorization_roles_table.c.key,
)


class AuthorizationsProjection(AggregateRows):
    """`authorizations` and `authorization_roles`, written in the push transaction."""

    name = "authorizations"
    version = 1
    inline = True
    tables = (authorizations_table, authorization_roles_table)
    row_table = authorizations_table

    @staticmethod
    def _roles(e: StoredEvent, user_id: str, project_id: str) -> list[Put]:
        return [
            Put(
                authorization_roles_table,
                {
                    "instance_id": e.instance_id,
                    "authorization_id": e.aggregate_id,
                    "key": key,
                    "user_id": user_id,
                    "project_id": project_id,
                    "resource_owner": e.owner,
                },
            )
            for key in dict.fromkeys(e.payload.get("role_keys", []))
        ]

    @handles(UserGrantAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._new_row(
                e,
                {
                    "user_id": p["user_id"],
                    "project_id": p["project_id"],
                    "project_grant_id": p.get("project_grant_id", ""),
                    "resource_owner": e.owner,
                    "state": ACTIVE,
                },
            ),
            RemoveWhere(
                authorization_roles_table,
                {"instance_id": e.instance_id, "authorization_id": e.aggregate_id},
            ),
            *self._roles(e, p["user_id"], p["project_id"]),
        ]

    @handles(UserGrantChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._touch(e),
            RemoveWhere(
                authorization_roles_table,
                {"instance_id": e.instance_id, "authorization_id": e.aggregate_id},
            ),
            *self._roles(e, p["user_id"], p["project_id"]),
        ]

    @handles(UserGrantDeactivated.TYPE)
    def deactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=INACTIVE)]

    @handles(UserGrantReactivated.TYPE)
    def reactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=ACTIVE)]

    @handles(UserGrantRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(authorizations_table, self._key(e)),
            RemoveWhere(
                authorization_roles_table,
                {"instance_id": e.instance_id, "authorization_id": e.aggregate_id},
            ),
        ]

    # What an authorization hangs on goes, and takes it (or its role) along.
    @handles("user.removed")
    def user_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        where = {"instance_id": e.instance_id, "user_id": e.aggregate_id}
        return [
            RemoveWhere(authorizations_table, where),
            RemoveWhere(authorization_roles_table, where),
        ]

    @handles("project.removed")
    def project_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        where = {"instance_id": e.instance_id, "project_id": e.aggregate_id}
        return [
            RemoveWhere(authorizations_table, where),
            RemoveWhere(authorization_roles_table, where),
        ]

    @handles("project.role.removed")
    def role_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                authorization_roles_table,
                {
                    "instance_id": e.instance_id,
                    "project_id": e.aggregate_id,
                    "key": e.payload["key"],
                },
            )
        ]

    @handles("org.removed")
    def org_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        where = {"instance_id": e.instance_id, "resource_owner": e.aggregate_id}
        return [
            RemoveWhere(authorizations_table, where),
            RemoveWhere(authorization_roles_table, where),
        ]


class AuthorizationState(WriteModel):
    """An authorization as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.user_id = ""
        self.project_id = ""
        self.project_grant_id = ""
        self.role_keys: list[str] = []
        self.state = ""

    @property
    def exists(self) -> bool:
        return self.state in (ACTIVE, INACTIVE)

    @applies(UserGrantAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        p = e.payload
        self.user_id, self.project_id = p["user_id"], p["project_id"]
        self.project_grant_id = p.get("project_grant_id", "")
        self.role_keys = list(p.get("role_keys", []))
        self.state = ACTIVE

    @applies(UserGrantChanged.TYPE)
    def on_changed(self, e: StoredEvent) -> None:
        self.role_keys = list(e.payload["role_keys"])

    @applies(UserGrantDeactivated.TYPE)
    def on_deactivated(self, e: StoredEvent) -> None:
        self.state = INACTIVE

    @applies(UserGrantReactivated.TYPE)
    def on_reactivated(self, e: StoredEvent) -> None:
        self.state = ACTIVE

    @applies(UserGrantRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.state = REMOVED


def add_authorization(
    instance_id: str,
    authorization_id: str,
    org_id: str,
    user_id: str,
    project_id: str,
    role_keys: list[str],
) -> AggregateChanges:
    """A new active authorization; the caller checked user, project and role keys."""
    return AggregateChanges(
        Aggregate(AGGREGATE, authorization_id, instance_id, org_id),
        [UserGrantAdded(user_id=user_id, project_id=project_id, role_keys=list(role_keys))],
        expected_sequence=0,
        unique=[AddUnique(UNIQUE_GRANT, grant_unique(project_id, user_id), GRANT_TAKEN)],
    )


def change_roles(state: AuthorizationState, role_keys: list[str]) -> AggregateChanges | None:
    """Replace the role keys; None when they are the same."""
    if sorted(set(role_keys)) == sorted(set(state.role_keys)):
        return None
    return AggregateChanges(
        state.aggregate(),
        [
            UserGrantChanged(
                user_id=state.user_id, project_id=state.project_id, role_keys=list(role_keys)
            )
        ],
        expected_sequence=state.sequence,
    )


def set_active(state: AuthorizationState, active: bool) -> AggregateChanges | None:
    """(Re)activate or deactivate; None when it already is."""
    if (state.state == ACTIVE) == active:
        return None
    event = UserGrantReactivated() if active else UserGrantDeactivated()
    return AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence)


def remove_authorization(state: AuthorizationState) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(),
        [
            UserGrantRemoved(
                user_id=state.user_id,
                project_id=state.project_id,
                project_grant_id=state.project_grant_id,
            )
        ],
        expected_sequence=state.sequence,
        unique=[
            RemoveUnique(
                UNIQUE_GRANT, grant_unique(state.project_id, state.user_id, state.project_grant_id)
            )
        ],
    )


# -- reads ------------------------------------------------------------------------------


async def roles_of(
    conn: AsyncConnection, instance_id: str, user_id: str, project_id: str
) -> list[str]:
    """The role keys of the user's active authorization on the project (sorted; [] if none).

    What the OIDC and SAML plugins put into role claims.
    """
    a, r = authorizations_table, authorization_roles_table
    rows = await conn.execute(
        select(r.c.key)
        .join(a, (a.c.instance_id == r.c.instance_id) & (a.c.id == r.c.authorization_id))
        .where(
            r.c.instance_id == instance_id,
            r.c.user_id == user_id,
            r.c.project_id == project_id,
            a.c.state == ACTIVE,
        )
        .order_by(r.c.key)
    )
    return [row[0] for row in rows]


async def get_authorization(
    conn: AsyncConnection, instance_id: str, authorization_id: str
) -> dict[str, object] | None:
    t = authorizations_table
    row = (
        await conn.execute(
            select(t).where(t.c.instance_id == instance_id, t.c.id == authorization_id)
        )
    ).first()
    return dict(row._mapping) if row else None
