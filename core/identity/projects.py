"""Projects: the containers of roles and applications, owned by an org.

A project carries the settings the login applies to its apps
(`project_role_assertion`: put the user's roles into tokens;
`authorization_required`: a user needs an authorization on the project to log
in, ZITADEL's `projectRoleCheck`; `project_access_required`: the user's org
must own or be granted the project, ZITADEL's `hasProjectCheck`) and its roles
(`key`, `display_name`, `group`). Project names are unique within their org,
role keys within their project (both compared case-insensitively).

Applications live on the project aggregate, as in ZITADEL (events
`project.application.*`, see `donjon.core.identity.apps`): removing a project
removes its roles, its apps and its members with it, and frees their unique
values (role keys, client ids, SAML entity ids).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Boolean, Column, Integer, Table, Text, select
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
from donjon.core.eventstore.store import EventStore
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

AGGREGATE = "project"
ACTIVE, INACTIVE, REMOVED = "active", "inactive", "removed"

NAME_TAKEN = "Errors.Project.AlreadyExists"
ROLE_TAKEN = "Errors.Project.Role.AlreadyExists"
MAX_NAME = 200
MAX_ROLE_FIELD = 200

# ZITADEL's domain.PrivateLabelingSetting, stored as its number.
PRIVATE_LABELING_UNSPECIFIED = 0
PRIVATE_LABELING_ENFORCE_PROJECT_RESOURCE_OWNER_POLICY = 1
PRIVATE_LABELING_ALLOW_LOGIN_USER_RESOURCE_OWNER_POLICY = 2
PRIVATE_LABELING_SETTINGS = (0, 1, 2)

# Unique value types, shared with `apps` (their claims are freed with the project).
UNIQUE_PROJECT_NAME = "project_name"
UNIQUE_ROLE = "project_role"
UNIQUE_CLIENT_ID = "client_id"
UNIQUE_ENTITY_ID = "saml_entity_id"
UNIQUE_APP_ID = "app_id"


def name_unique(org_id: str, name: str) -> str:
    return f"{org_id}:{name}"


def role_unique(project_id: str, key: str) -> str:
    return f"{project_id}:{key}"


class PartialEvent(Event):
    """An event whose None fields mean "unchanged": they are left out of the payload."""

    def payload(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class ProjectAdded(Event):
    TYPE = "project.added"
    AGGREGATE_TYPE = AGGREGATE
    name: str
    project_role_assertion: bool = False
    project_role_check: bool = False
    has_project_check: bool = False
    private_labeling_setting: int = PRIVATE_LABELING_UNSPECIFIED


@dataclass(frozen=True)
class ProjectChanged(PartialEvent):
    TYPE = "project.changed"
    AGGREGATE_TYPE = AGGREGATE
    name: str | None = None
    # The name before a rename, so the old unique value can be freed by replays too.
    old_name: str | None = None
    project_role_assertion: bool | None = None
    project_role_check: bool | None = None
    has_project_check: bool | None = None
    private_labeling_setting: int | None = None


@dataclass(frozen=True)
class ProjectDeactivated(Event):
    TYPE = "project.deactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class ProjectReactivated(Event):
    TYPE = "project.reactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class ProjectRemoved(Event):
    TYPE = "project.removed"
    AGGREGATE_TYPE = AGGREGATE
    name: str = ""


@dataclass(frozen=True)
class ProjectRoleAdded(Event):
    TYPE = "project.role.added"
    AGGREGATE_TYPE = AGGREGATE
    key: str
    display_name: str = ""
    group: str = ""


@dataclass(frozen=True)
class ProjectRoleChanged(PartialEvent):
    TYPE = "project.role.changed"
    AGGREGATE_TYPE = AGGREGATE
    key: str = ""
    display_name: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class ProjectRoleRemoved(Event):
    TYPE = "project.role.removed"
    AGGREGATE_TYPE = AGGREGATE
    key: str


EVENT_TYPES: list[type[Event]] = [
    ProjectAdded,
    ProjectChanged,
    ProjectDeactivated,
    ProjectReactivated,
    ProjectRemoved,
    ProjectRoleAdded,
    ProjectRoleChanged,
    ProjectRoleRemoved,
]

projects_table = Table(
    "projects",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("resource_owner", Text, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("project_role_assertion", Boolean, nullable=False),
    # ZITADEL's projectRoleCheck: a user needs an authorization on the project to log in.
    Column("authorization_required", Boolean, nullable=False),
    # ZITADEL's hasProjectCheck: the user's org must own or be granted the project.
    Column("project_access_required", Boolean, nullable=False),
    Column("private_labeling_setting", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

project_roles_table = Table(
    "project_roles",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("project_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("group", Text, nullable=False),
    Column("resource_owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

# Event payload names -> read-model columns.
_SETTING_COLUMNS = {
    "name": "name",
    "project_role_assertion": "project_role_assertion",
    "project_role_check": "authorization_required",
    "has_project_check": "project_access_required",
    "private_labeling_setting": "private_labeling_setting",
}


class ProjectsProjection(AggregateRows):
    """The `projects` and `project_roles` read models."""

    name = "projects"
    version = 1
    inline = True
    tables = (projects_table, project_roles_table)
    row_table = projects_table

    @handles(ProjectAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._new_row(
                e,
                {
                    "resource_owner": e.owner,
                    "name": p["name"],
                    "state": ACTIVE,
                    "project_role_assertion": bool(p.get("project_role_assertion")),
                    "authorization_required": bool(p.get("project_role_check")),
                    "project_access_required": bool(p.get("has_project_check")),
                    "private_labeling_setting": int(p.get("private_labeling_setting") or 0),
                },
            )
        ]

    @handles(ProjectChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        values = {
            column: e.payload[name]
            for name, column in _SETTING_COLUMNS.items()
            if e.payload.get(name) is not None
        }
        return [self._touch(e, **values)]

    @handles(ProjectDeactivated.TYPE)
    def deactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=INACTIVE)]

    @handles(ProjectReactivated.TYPE)
    def reactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=ACTIVE)]

    @handles(ProjectRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(projects_table, self._key(e)),
            RemoveWhere(
                project_roles_table,
                {"instance_id": e.instance_id, "project_id": e.aggregate_id},
            ),
        ]

    # An org takes its projects with it.
    @handles("org.removed")
    def org_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        where = {"instance_id": e.instance_id, "resource_owner": e.aggregate_id}
        return [RemoveWhere(projects_table, where), RemoveWhere(project_roles_table, where)]

    def _role_key(self, e: StoredEvent) -> dict[str, str]:
        return {
            "instance_id": e.instance_id,
            "project_id": e.aggregate_id,
            "key": e.payload["key"],
        }

    @handles(ProjectRoleAdded.TYPE)
    def role_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                project_roles_table,
                {
                    **self._role_key(e),
                    "display_name": e.payload.get("display_name") or "",
                    "group": e.payload.get("group") or "",
                    "resource_owner": e.owner,
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(ProjectRoleChanged.TYPE)
    def role_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        values: dict[str, object] = {
            name: e.payload[name]
            for name in ("display_name", "group")
            if e.payload.get(name) is not None
        }
        return [
            Patch(
                project_roles_table,
                self._role_key(e),
                {**values, "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(ProjectRoleRemoved.TYPE)
    def role_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(project_roles_table, self._role_key(e))]


@dataclass
class Role:
    key: str
    display_name: str
    group: str


class ProjectState(WriteModel):
    """A project as its commands see it, with its roles and its apps' unique values."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.name = ""
        self.state = ""
        self.project_role_assertion = False
        self.project_role_check = False
        self.has_project_check = False
        self.private_labeling_setting = PRIVATE_LABELING_UNSPECIFIED
        self.roles: dict[str, Role] = {}
        # app id -> its unique values (client id, SAML entity id), freed with the project.
        self.app_uniques: dict[str, dict[str, str]] = {}

    @property
    def exists(self) -> bool:
        return self.state in (ACTIVE, INACTIVE)

    @applies(ProjectAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        p = e.payload
        self.name = p["name"]
        self.state = ACTIVE
        self.project_role_assertion = bool(p.get("project_role_assertion"))
        self.project_role_check = bool(p.get("project_role_check"))
        self.has_project_check = bool(p.get("has_project_check"))
        self.private_labeling_setting = int(p.get("private_labeling_setting") or 0)

    @applies(ProjectChanged.TYPE)
    def on_changed(self, e: StoredEvent) -> None:
        for name in _SETTING_COLUMNS:
            if e.payload.get(name) is not None:
                setattr(self, name, e.payload[name])

    @applies(ProjectDeactivated.TYPE)
    def on_deactivated(self, e: StoredEvent) -> None:
        self.state = INACTIVE

    @applies(ProjectReactivated.TYPE)
    def on_reactivated(self, e: StoredEvent) -> None:
        self.state = ACTIVE

    @applies(ProjectRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.state = REMOVED

    @applies(ProjectRoleAdded.TYPE)
    def on_role_added(self, e: StoredEvent) -> None:
        p = e.payload
        self.roles[p["key"]] = Role(p["key"], p.get("display_name") or "", p.get("group") or "")

    @applies(ProjectRoleChanged.TYPE)
    def on_role_changed(self, e: StoredEvent) -> None:
        role = self.roles.get(e.payload["key"])
        if role is None:
            return
        if e.payload.get("display_name") is not None:
            role.display_name = e.payload["display_name"]
        if e.payload.get("group") is not None:
            role.group = e.payload["group"]

    @applies(ProjectRoleRemoved.TYPE)
    def on_role_removed(self, e: StoredEvent) -> None:
        self.roles.pop(e.payload["key"], None)

    # The app events that claim or free unique values (see `apps`).
    @applies("project.application.added")
    def on_app_added(self, e: StoredEvent) -> None:
        self.app_uniques.setdefault(e.payload["app_id"], {})[UNIQUE_APP_ID] = e.payload["app_id"]

    @applies("project.application.config.oidc.added", "project.application.config.api.added")
    def on_client_added(self, e: StoredEvent) -> None:
        self.app_uniques.setdefault(e.payload["app_id"], {})[UNIQUE_CLIENT_ID] = e.payload[
            "client_id"
        ]

    @applies("project.application.config.saml.added", "project.application.config.saml.changed")
    def on_saml(self, e: StoredEvent) -> None:
        if "entity_id" not in e.payload:
            return
        uniques = self.app_uniques.setdefault(e.payload["app_id"], {})
        if e.payload["entity_id"]:
            uniques[UNIQUE_ENTITY_ID] = e.payload["entity_id"]
        else:
            uniques.pop(UNIQUE_ENTITY_ID, None)

    @applies("project.application.removed")
    def on_app_removed(self, e: StoredEvent) -> None:
        self.app_uniques.pop(e.payload["app_id"], None)


# -- validation -------------------------------------------------------------------------


def check_project_name(name: str) -> str:
    """The trimmed name; ValueError saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return name


def check_role_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise ValueError("must not be empty")
    if len(key) > MAX_ROLE_FIELD:
        raise ValueError(f"must be at most {MAX_ROLE_FIELD} characters")
    return key


def check_role_text(value: str) -> str:
    """A display name or group: trimmed, at most 200 characters."""
    value = value.strip()
    if len(value) > MAX_ROLE_FIELD:
        raise ValueError(f"must be at most {MAX_ROLE_FIELD} characters")
    return value


# -- commands ---------------------------------------------------------------------------


def add_project(
    instance_id: str,
    org_id: str,
    project_id: str,
    name: str,
    *,
    project_role_assertion: bool = False,
    project_role_check: bool = False,
    has_project_check: bool = False,
    private_labeling_setting: int = PRIVATE_LABELING_UNSPECIFIED,
) -> AggregateChanges:
    """A new active project in `org_id` (the name checked by `check_project_name`)."""
    name = check_project_name(name)
    return AggregateChanges(
        Aggregate(AGGREGATE, project_id, instance_id, org_id),
        [
            ProjectAdded(
                name=name,
                project_role_assertion=project_role_assertion,
                project_role_check=project_role_check,
                has_project_check=has_project_check,
                private_labeling_setting=private_labeling_setting,
            )
        ],
        expected_sequence=0,
        unique=[AddUnique(UNIQUE_PROJECT_NAME, name_unique(org_id, name), NAME_TAKEN)],
    )


def change_project(state: ProjectState, **changes: Any) -> AggregateChanges | None:
    """The event setting the settings that differ (None: unchanged); None when nothing does.

    Keyword names are the event's: name, project_role_assertion,
    project_role_check, has_project_check, private_labeling_setting.
    """
    diff = {k: v for k, v in changes.items() if v is not None and getattr(state, k) != v}
    if not diff:
        return None
    unique: list[AddUnique | RemoveUnique] = []
    if "name" in diff:
        diff["name"] = check_project_name(diff["name"])
        diff["old_name"] = state.name
        unique = [
            RemoveUnique(UNIQUE_PROJECT_NAME, name_unique(state.owner, state.name)),
            AddUnique(UNIQUE_PROJECT_NAME, name_unique(state.owner, diff["name"]), NAME_TAKEN),
        ]
    return AggregateChanges(
        state.aggregate(),
        [ProjectChanged(**diff)],
        expected_sequence=state.sequence,
        unique=unique,
    )


def set_project_state(state: ProjectState, active: bool) -> AggregateChanges:
    event = ProjectReactivated() if active else ProjectDeactivated()
    return AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence)


def remove_project(state: ProjectState) -> AggregateChanges:
    """Remove the project, freeing its name, role keys, client ids and entity ids."""
    unique: list[AddUnique | RemoveUnique] = [
        RemoveUnique(UNIQUE_PROJECT_NAME, name_unique(state.owner, state.name)),
        *(RemoveUnique(UNIQUE_ROLE, role_unique(state.id, k)) for k in state.roles),
    ]
    for values in state.app_uniques.values():
        unique.extend(RemoveUnique(kind, value) for kind, value in values.items())
    return AggregateChanges(
        state.aggregate(),
        [ProjectRemoved(name=state.name)],
        expected_sequence=state.sequence,
        unique=unique,
    )


def add_role(state: ProjectState, key: str, display_name: str, group: str) -> AggregateChanges:
    key = check_role_key(key)
    return AggregateChanges(
        state.aggregate(),
        [ProjectRoleAdded(key=key, display_name=display_name, group=group)],
        expected_sequence=state.sequence,
        unique=[AddUnique(UNIQUE_ROLE, role_unique(state.id, key), ROLE_TAKEN)],
    )


def change_role(
    state: ProjectState, key: str, display_name: str | None, group: str | None
) -> AggregateChanges | None:
    """The change of a role's display name or group (None: unchanged); None when nothing changes."""
    role = state.roles[key]
    if display_name == role.display_name:
        display_name = None
    if group == role.group:
        group = None
    if display_name is None and group is None:
        return None
    return AggregateChanges(
        state.aggregate(),
        [ProjectRoleChanged(key=key, display_name=display_name, group=group)],
        expected_sequence=state.sequence,
    )


def remove_role(state: ProjectState, key: str) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(),
        [ProjectRoleRemoved(key=key)],
        expected_sequence=state.sequence,
        unique=[RemoveUnique(UNIQUE_ROLE, role_unique(state.id, key))],
    )


async def remove_org_projects(
    store: EventStore, conn: AsyncConnection, instance_id: str, org_id: str
) -> list[AggregateChanges]:
    """The removal of every project of an org, to push with the org's removal.

    The read models drop an org's projects on `org.removed` anyway; pushing
    these frees the projects' unique values too (client ids, SAML entity ids,
    custom app ids), so they can be used again elsewhere.
    """
    rows = await conn.execute(
        select(projects_table.c.id).where(
            projects_table.c.instance_id == instance_id,
            projects_table.c.resource_owner == org_id,
        )
    )
    changes = []
    for (project_id,) in rows.all():
        state = await ProjectState.load(store, instance_id, project_id)
        if state.exists:
            changes.append(remove_project(state))
    return changes


# -- reads ------------------------------------------------------------------------------


async def get_project(
    conn: AsyncConnection, instance_id: str, project_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(projects_table).where(
                projects_table.c.instance_id == instance_id, projects_table.c.id == project_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def project_role_keys(conn: AsyncConnection, instance_id: str, project_id: str) -> set[str]:
    """The keys of the project's roles."""
    rows = await conn.execute(
        select(project_roles_table.c.key).where(
            project_roles_table.c.instance_id == instance_id,
            project_roles_table.c.project_id == project_id,
        )
    )
    return {r[0] for r in rows}
