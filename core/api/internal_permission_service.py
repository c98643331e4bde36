"""zitadel.internal_permission.v2.InternalPermissionService: administrators (members).

An administrator is a user with administrator roles on one resource: the
instance (`IAM_*` roles), an organization (`ORG_*`) or a project
(`PROJECT_*`); the roles a resource accepts are
`donjon.core.identity.members.ROLES_BY_SCOPE`. Writing needs
`iam.member.write`, `org.member.write` (on the org) or
`project.member.write` (on the project or its org); deleting the matching
`*.member.delete`; lists show what the caller may read
(`iam.member.read`, `org.member.read`, `project.member.read`) and the
caller's own roles. The last IAM_OWNER of an instance can neither be
removed nor lose the role (failed_precondition), so an instance always has
someone who can administer it. Project grants are not supported yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Text, and_, cast, false, func, not_, or_, select, true
from sqlalchemy.sql import ColumnElement

from donjon.core.api.auth import projects_with_permission
from donjon.core.api.authorization_service import text_filter
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
    parse_timestamp,
    timestamp,
)
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
)
from donjon.core.identity import members, orgs, projects
from donjon.core.identity.members import INSTANCE, ORG, PROJECT, members_table
from donjon.core.identity.users import users_table

service = Service("zitadel.internal_permission.v2.InternalPermissionService")

# Filters nest (and / or / not); this bounds the recursion a request can cause.
MAX_FILTER_DEPTH = 8


class ProjectGrant(Message):
    project_id: str = ""
    organization_id: str = ""


class ResourceType(Message):
    instance: bool | None = None
    organization_id: str | None = None
    project_id: str | None = None
    project_grant: ProjectGrant | None = None


class CreateAdministratorRequest(Message):
    user_id: str = ""
    resource: ResourceType | None = None
    roles: list[str] = []


class UpdateAdministratorRequest(Message):
    user_id: str = ""
    resource: ResourceType | None = None
    roles: list[str] = []


class DeleteAdministratorRequest(Message):
    user_id: str = ""
    resource: ResourceType | None = None


class InIDsFilter(Message):
    ids: list[str] = []


class IDFilter(Message):
    id: str = ""


class TimestampFilter(Message):
    timestamp: str | None = None
    method: str | None = None


class RoleFilter(Message):
    role_key: str = ""


class UserDisplayNameFilter(Message):
    display_name: str = ""
    method: str | None = None


class UserPreferredLoginNameFilter(Message):
    preferred_login_name: str = ""
    method: str | None = None


class AndFilter(Message):
    queries: list[AdministratorSearchFilter] = []


class OrFilter(Message):
    queries: list[AdministratorSearchFilter] = []


class NotFilter(Message):
    query: AdministratorSearchFilter | None = None


class AdministratorSearchFilter(Message):
    and_: AndFilter | None = msgspec.field(default=None, name="and")
    or_: OrFilter | None = msgspec.field(default=None, name="or")
    not_: NotFilter | None = msgspec.field(default=None, name="not")
    change_date: TimestampFilter | None = None
    creation_date: TimestampFilter | None = None
    in_user_ids_filter: InIDsFilter | None = None
    resource: ResourceType | None = None
    role: RoleFilter | None = None
    user_display_name: UserDisplayNameFilter | None = None
    user_organization_id: IDFilter | None = None
    user_preferred_login_name: UserPreferredLoginNameFilter | None = None


class ListAdministratorsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[AdministratorSearchFilter] = []


# -- the resource a request addresses ----------------------------------------------------


@dataclass(frozen=True)
class Resource:
    scope: str
    id: str
    # The org owning it (the instance id for the instance).
    owner: str


def _resource_kind(resource: ResourceType | None, field_name: str) -> tuple[str, str]:
    """(scope, id) of a ResourceType: exactly one of its fields must be set."""
    if resource is None:
        raise invalid(field_name, "is required: instance, organizationId or projectId")
    chosen = [
        (scope, value)
        for scope, value in (
            (INSTANCE, "" if resource.instance else None),
            (ORG, resource.organization_id or None),
            (PROJECT, resource.project_id or None),
        )
        if value is not None
    ]
    if resource.project_grant is not None:
        raise invalid(f"{field_name}.projectGrant", "project grants are not supported yet")
    if len(chosen) != 1:
        raise invalid(field_name, "set exactly one of instance, organizationId, projectId")
    return chosen[0]


async def _resource(call: Call, resource: ResourceType | None) -> Resource:
    """The addressed resource; not_found when it is not in this instance."""
    scope, resource_id = _resource_kind(resource, "resource")
    if scope == INSTANCE:
        return Resource(INSTANCE, call.instance_id, call.instance_id)
    async with call.runtime.db.read() as conn:
        if scope == ORG:
            if await orgs.get_org(conn, call.instance_id, resource_id) is None:
                raise ConnectError(
                    "not_found", f"resource.organizationId: organization {resource_id} not found"
                )
            return Resource(ORG, resource_id, resource_id)
        project = await projects.get_project(conn, call.instance_id, resource_id)
    if project is None:
        raise ConnectError("not_found", f"resource.projectId: project {resource_id} not found")
    return Resource(PROJECT, resource_id, str(project["resource_owner"]))


async def _require(call: Call, resource: Resource, action: str) -> None:
    """`iam.member.<action>`, `org.member.<action>` or `project.member.<action>` on it."""
    if resource.scope == INSTANCE:
        await call.require(f"iam.member.{action}")
    elif resource.scope == ORG:
        await call.require(f"org.member.{action}", org_id=resource.id)
    else:
        await call.require(
            f"project.member.{action}", org_id=resource.owner, project_id=resource.id
        )


def _required(field_name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid(field_name, "is required")
    return value


async def _state(call: Call, resource: Resource) -> members._ResourceMembers:
    cls = members.MEMBER_STATES[resource.scope]
    return await cls.load(call.runtime.store, call.instance_id, resource.id)


def _check_roles(scope: str, roles: list[str]) -> list[str]:
    try:
        return members.check_roles(scope, roles)
    except ValueError as exc:
        raise invalid("roles", str(exc)) from None


async def _keep_an_owner(call: Call, user_id: str, resource: Resource, roles: list[str]) -> None:
    """failed_precondition when this would leave the instance without an IAM_OWNER."""
    if resource.scope != INSTANCE or "IAM_OWNER" in roles:
        return
    async with call.runtime.db.read() as conn:
        owners = await members.instance_owners(conn, call.instance_id)
    if owners == {user_id}:
        raise ConnectError(
            "failed_precondition",
            "the instance's last IAM_OWNER cannot lose the role: make another user IAM_OWNER first",
        )


# -- commands ----------------------------------------------------------------------------


@service.rpc("CreateAdministrator", request=CreateAdministratorRequest)
async def create_administrator(call: Call, req: CreateAdministratorRequest) -> dict[str, Any]:
    """Give a user administrator roles on the instance, an organization or a project."""
    user_id = _required("userId", req.user_id)
    resource = await _resource(call, req.resource)
    roles = _check_roles(resource.scope, req.roles)
    await _require(call, resource, "write")
    async with call.runtime.db.read() as conn:
        user = (
            await conn.execute(
                select(users_table.c.id).where(
                    users_table.c.instance_id == call.instance_id, users_table.c.id == user_id
                )
            )
        ).first()
    if user is None:
        raise ConnectError("not_found", f"userId: no user {user_id} in this instance")
    state = await _state(call, resource)
    if user_id in state.members:
        raise ConnectError(
            "already_exists",
            "the user is already an administrator of this resource: use UpdateAdministrator",
        )
    stored = await call.runtime.store.push(
        members.add_member_to(state, resource.owner, user_id, roles), creator=call.user_id
    )
    return {"creationDate": timestamp(stored[-1].created_at)}


@service.rpc("UpdateAdministrator", request=UpdateAdministratorRequest)
async def update_administrator(call: Call, req: UpdateAdministratorRequest) -> dict[str, Any]:
    """Replace an administrator's roles (roles left out are revoked)."""
    user_id = _required("userId", req.user_id)
    resource = await _resource(call, req.resource)
    roles = _check_roles(resource.scope, req.roles)
    await _require(call, resource, "write")
    state = await _state(call, resource)
    if user_id not in state.members:
        raise ConnectError("not_found", "the user is not an administrator of this resource")
    await _keep_an_owner(call, user_id, resource, roles)
    changes = members.change_member(state, user_id, roles)
    if changes is None:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("DeleteAdministrator", request=DeleteAdministratorRequest)
async def delete_administrator(call: Call, req: DeleteAdministratorRequest) -> dict[str, Any]:
    """Revoke all of a user's administrator roles on a resource (none: success, no date)."""
    user_id = _required("userId", req.user_id)
    resource = await _resource(call, req.resource)
    await _require(call, resource, "delete")
    state = await _state(call, resource)
    if user_id not in state.members:
        return {}
    await _keep_an_owner(call, user_id, resource, [])
    stored = await call.runtime.store.push(
        members.remove_member(state, user_id), creator=call.user_id
    )
    return {"deletionDate": timestamp(stored[-1].created_at or datetime.now(UTC))}


# -- list --------------------------------------------------------------------------------

_users = users_table.alias("u")
_user_orgs = orgs.orgs_table.alias("uo")
_orgs = orgs.orgs_table.alias("o")
_projects = projects.projects_table.alias("p")
_display_name = func.coalesce(func.nullif(_users.c.display_name, ""), _users.c.name)
_login_name = _users.c.username + "@" + _user_orgs.c.primary_domain

SORT_COLUMNS = {
    None: members_table.c.created_at,
    "ADMINISTRATOR_FIELD_NAME_UNSPECIFIED": members_table.c.created_at,
    "ADMINISTRATOR_FIELD_NAME_CREATION_DATE": members_table.c.created_at,
    "ADMINISTRATOR_FIELD_NAME_CHANGE_DATE": members_table.c.changed_at,
    "ADMINISTRATOR_FIELD_NAME_USER_ID": members_table.c.user_id,
}

TIMESTAMP_METHODS = {
    None: lambda c, t: c == t,
    "TIMESTAMP_FILTER_METHOD_EQUALS": lambda c, t: c == t,
    "TIMESTAMP_FILTER_METHOD_AFTER": lambda c, t: c > t,
    "TIMESTAMP_FILTER_METHOD_AFTER_OR_EQUALS": lambda c, t: c >= t,
    "TIMESTAMP_FILTER_METHOD_BEFORE": lambda c, t: c < t,
    "TIMESTAMP_FILTER_METHOD_BEFORE_OR_EQUALS": lambda c, t: c <= t,
}


def _timestamp_filter(column: Any, f: TimestampFilter, at: str) -> ColumnElement[bool]:
    when = parse_timestamp(f"{at}.timestamp", f.timestamp)
    if when is None:
        raise invalid(f"{at}.timestamp", "is required")
    compare = TIMESTAMP_METHODS.get(f.method)
    if compare is None:
        raise invalid(f"{at}.method", f"unknown method {f.method!r}")
    return compare(column, when)


def _filter(f: AdministratorSearchFilter, at: str, depth: int = 0) -> ColumnElement[bool]:
    t = members_table
    if depth > MAX_FILTER_DEPTH:
        raise invalid(at, f"filters nest at most {MAX_FILTER_DEPTH} deep")
    if f.and_ is not None:
        parts = [
            _filter(q, f"{at}.and.queries.{i}", depth + 1) for i, q in enumerate(f.and_.queries)
        ]
        return and_(true(), *parts)
    if f.or_ is not None:
        parts = [_filter(q, f"{at}.or.queries.{i}", depth + 1) for i, q in enumerate(f.or_.queries)]
        return or_(false(), *parts)
    if f.not_ is not None:
        if f.not_.query is None:
            raise invalid(f"{at}.not.query", "is required")
        return not_(_filter(f.not_.query, f"{at}.not.query", depth + 1))
    if f.change_date is not None:
        return _timestamp_filter(t.c.changed_at, f.change_date, f"{at}.changeDate")
    if f.creation_date is not None:
        return _timestamp_filter(t.c.created_at, f.creation_date, f"{at}.creationDate")
    if f.in_user_ids_filter is not None:
        return t.c.user_id.in_(f.in_user_ids_filter.ids)
    if f.resource is not None:
        scope, resource_id = _resource_kind(f.resource, f"{at}.resource")
        return and_(t.c.scope == scope, t.c.resource_id == (resource_id or t.c.instance_id))
    if f.role is not None:
        role = _required(f"{at}.role.roleKey", f.role.role_key)
        # Roles are a JSON list of upper-case names: a quoted match is exact.
        return cast(t.c.roles, Text).like(f'%"{role}"%')
    if f.user_display_name is not None:
        q = f.user_display_name
        return text_filter(_display_name, q.display_name, q.method, f"{at}.userDisplayName")
    if f.user_organization_id is not None:
        return _users.c.resource_owner == f.user_organization_id.id
    if f.user_preferred_login_name is not None:
        q = f.user_preferred_login_name
        return text_filter(
            _login_name, q.preferred_login_name, q.method, f"{at}.userPreferredLoginName"
        )
    raise invalid(at, "set one filter (resource, role, inUserIdsFilter, and, or, not, ...)")


async def _visible(call: Call) -> ColumnElement[bool]:
    """The memberships the caller may read: by permission, and its own."""
    t = members_table
    instance_ok = await call.allowed("iam.member.read")
    org_orgs = await call.visible_orgs("org.member.read")
    project_orgs = await call.visible_orgs("project.member.read")
    own_projects = await projects_with_permission(call, "project.member.read")
    return or_(
        and_(t.c.scope == INSTANCE, true() if instance_ok else false()),
        and_(t.c.scope == ORG, true() if org_orgs is None else t.c.resource_id.in_(org_orgs)),
        and_(
            t.c.scope == PROJECT,
            true()
            if project_orgs is None
            else or_(t.c.resource_owner.in_(project_orgs), t.c.resource_id.in_(own_projects)),
        ),
        t.c.user_id == call.user_id,
    )


@service.rpc("ListAdministrators", request=ListAdministratorsRequest)
async def list_administrators(call: Call, req: ListAdministratorsRequest) -> dict[str, Any]:
    """Search the administrators the caller may read (its own roles included)."""
    offset, limit, asc = paging(req.pagination, "pagination")
    sort = sort_column(SORT_COLUMNS, req.sorting_column)
    t = members_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    conditions += [_filter(f, f"filters.{i}") for i, f in enumerate(req.filters)]
    conditions.append(await _visible(call))
    joined = (
        t.outerjoin(
            _users, (_users.c.instance_id == t.c.instance_id) & (_users.c.id == t.c.user_id)
        )
        .outerjoin(
            _user_orgs,
            (_user_orgs.c.instance_id == t.c.instance_id)
            & (_user_orgs.c.id == _users.c.resource_owner),
        )
        .outerjoin(
            _orgs,
            (_orgs.c.instance_id == t.c.instance_id)
            & (t.c.scope == ORG)
            & (_orgs.c.id == t.c.resource_id),
        )
        .outerjoin(
            _projects,
            (_projects.c.instance_id == t.c.instance_id)
            & (t.c.scope == PROJECT)
            & (_projects.c.id == t.c.resource_id),
        )
    )
    columns = [
        t,
        _users.c.username,
        _display_name.label("user_display_name"),
        _users.c.resource_owner.label("user_org"),
        _user_orgs.c.primary_domain.label("user_domain"),
        _orgs.c.name.label("org_name"),
        _projects.c.name.label("project_name"),
    ]
    order = ordering(asc, sort, t.c.scope, t.c.resource_id, t.c.user_id)
    async with call.runtime.db.read() as conn:
        query = select(*columns).select_from(joined)
        total, rows = await read_page(conn, joined, conditions, order, offset, limit, query)
    return {
        "pagination": pagination(total, limit),
        "administrators": [_administrator_json(row) for row in rows],
    }


def _administrator_json(row: Any) -> dict[str, Any]:
    login_name = f"{row.username}@{row.user_domain}" if row.user_domain else (row.username or "")
    out: dict[str, Any] = {
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "user": {
            "id": row.user_id,
            "preferredLoginName": login_name,
            "displayName": row.user_display_name or "",
            "organizationId": row.user_org or "",
        },
        "roles": list(row.roles),
    }
    if row.scope == INSTANCE:
        out["instance"] = True
    elif row.scope == ORG:
        out["organization"] = {"id": row.resource_id, "name": row.org_name or ""}
    else:
        out["project"] = {
            "id": row.resource_id,
            "name": row.project_name or "",
            "organizationId": row.resource_owner,
        }
    return out
