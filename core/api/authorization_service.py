"""zitadel.authorization.v2.AuthorizationService: users' roles on projects.

An authorization gives one user role keys on one project (at most one per
user and project); it is created in the org owning the project. Every role
key must be a role of the project. Permissions: `user.grant.write` (create,
update, (de)activate) and `user.grant.delete` on the project's org or on the
project itself (a PROJECT_OWNER); lists show what the caller may read with
`user.grant.read`, plus the caller's own authorizations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.sql import ColumnElement

from donjon.core import ids
from donjon.core.api.auth import projects_with_permission
from donjon.core.api.connect import Call, ConnectError, Message, Service, invalid, timestamp
from donjon.core.api.queries import (
    TEXT_METHODS,
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
    text_condition,
)
from donjon.core.identity import authorizations, projects
from donjon.core.identity.authorizations import (
    AuthorizationState,
    authorization_roles_table,
    authorizations_table,
)
from donjon.core.identity.orgs import orgs_table
from donjon.core.identity.users import users_table

service = Service("zitadel.authorization.v2.AuthorizationService")

STATES = {authorizations.ACTIVE: "STATE_ACTIVE", authorizations.INACTIVE: "STATE_INACTIVE"}


class CreateAuthorizationRequest(Message):
    user_id: str = ""
    project_id: str = ""
    organization_id: str | None = None
    role_keys: list[str] = []


class UpdateAuthorizationRequest(Message):
    id: str = ""
    role_keys: list[str] = []


class AuthorizationIDRequest(Message):
    id: str = ""


class InIDsFilter(Message):
    ids: list[str] = []


class IDFilter(Message):
    id: str = ""


class ProjectNameQuery(Message):
    name: str = ""
    method: str | None = None


class RoleKeyQuery(Message):
    key: str = ""
    method: str | None = None


class StateQuery(Message):
    state: str = ""


class UserDisplayNameQuery(Message):
    display_name: str = ""
    method: str | None = None


class UserPreferredLoginNameQuery(Message):
    login_name: str = ""
    method: str | None = None


class AuthorizationsSearchFilter(Message):
    authorization_ids: InIDsFilter | None = None
    in_user_ids: InIDsFilter | None = None
    organization_id: IDFilter | None = None
    project_grant_id: IDFilter | None = None
    project_id: IDFilter | None = None
    project_name: ProjectNameQuery | None = None
    role_key: RoleKeyQuery | None = None
    state: StateQuery | None = None
    user_display_name: UserDisplayNameQuery | None = None
    user_organization_id: IDFilter | None = None
    user_preferred_login_name: UserPreferredLoginNameQuery | None = None


class ListAuthorizationsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[AuthorizationsSearchFilter] = []


# -- checks ------------------------------------------------------------------------------


def _required(field_name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid(field_name, "is required")
    return value


async def _check_role_keys(call: Call, project_id: str, keys: list[str]) -> list[str]:
    """The keys, deduplicated in order; invalid_argument naming a key the project lacks."""
    async with call.runtime.db.read() as conn:
        known = await projects.project_role_keys(conn, call.instance_id, project_id)
    for i, key in enumerate(keys):
        if not key.strip():
            raise invalid(f"roleKeys.{i}", "must not be empty")
        if key not in known:
            raise invalid(f"roleKeys.{i}", f"the project has no role {key!r}")
    return list(dict.fromkeys(keys))


async def _authorization(call: Call, authorization_id: str, permission: str) -> AuthorizationState:
    """The authorization's write model, once the caller may `permission` on it."""
    authorization_id = _required("id", authorization_id)
    async with call.runtime.db.read() as conn:
        row = await authorizations.get_authorization(conn, call.instance_id, authorization_id)
    if row is None:
        # Gone, or cascaded away with its user or project.
        raise ConnectError("not_found", f"authorization {authorization_id} not found")
    await call.require(
        permission, org_id=str(row["resource_owner"]), project_id=str(row["project_id"])
    )
    state = await AuthorizationState.load(call.runtime.store, call.instance_id, authorization_id)
    if not state.exists:
        raise ConnectError("not_found", f"authorization {authorization_id} not found")
    return state


# -- commands ----------------------------------------------------------------------------


@service.rpc("CreateAuthorization", request=CreateAuthorizationRequest)
async def create_authorization(call: Call, req: CreateAuthorizationRequest) -> dict[str, Any]:
    """Give a user roles on a project (one authorization per user and project)."""
    user_id = _required("userId", req.user_id)
    project_id = _required("projectId", req.project_id)
    async with call.runtime.db.read() as conn:
        project = await projects.get_project(conn, call.instance_id, project_id)
    if project is None:
        raise ConnectError("not_found", f"projectId: no project {project_id} in this instance")
    org_id = str(project["resource_owner"])
    if req.organization_id and req.organization_id != org_id:
        raise invalid(
            "organizationId",
            "must be the organization owning the project (authorizations through project"
            " grants are not supported yet)",
        )
    await call.require("user.grant.write", org_id=org_id, project_id=project_id)
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
    keys = await _check_role_keys(call, project_id, req.role_keys)
    authorization_id = ids.new_id()
    stored = await call.runtime.store.push(
        authorizations.add_authorization(
            call.instance_id, authorization_id, org_id, user_id, project_id, keys
        ),
        creator=call.user_id,
    )
    return {"id": authorization_id, "creationDate": timestamp(stored[-1].created_at)}


@service.rpc("UpdateAuthorization", request=UpdateAuthorizationRequest)
async def update_authorization(call: Call, req: UpdateAuthorizationRequest) -> dict[str, Any]:
    """Replace the role keys of an authorization (keys left out are revoked)."""
    state = await _authorization(call, req.id, "user.grant.write")
    keys = await _check_role_keys(call, state.project_id, req.role_keys)
    changes = authorizations.change_roles(state, keys)
    if changes is None:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


async def _set_active(call: Call, req: AuthorizationIDRequest, active: bool) -> dict[str, Any]:
    state = await _authorization(call, req.id, "user.grant.write")
    changes = authorizations.set_active(state, active)
    if changes is None:  # already in the desired state: success, with the last change's date
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("ActivateAuthorization", request=AuthorizationIDRequest)
async def activate_authorization(call: Call, req: AuthorizationIDRequest) -> dict[str, Any]:
    """Reactivate an inactive authorization (an active one stays as it is)."""
    return await _set_active(call, req, True)


@service.rpc("DeactivateAuthorization", request=AuthorizationIDRequest)
async def deactivate_authorization(call: Call, req: AuthorizationIDRequest) -> dict[str, Any]:
    """Deactivate an authorization: its roles no longer count (an inactive one stays)."""
    return await _set_active(call, req, False)


@service.rpc("DeleteAuthorization", request=AuthorizationIDRequest)
async def delete_authorization(call: Call, req: AuthorizationIDRequest) -> dict[str, Any]:
    """Remove an authorization; an unknown one is success without a deletionDate."""
    authorization_id = _required("id", req.id)
    state = await AuthorizationState.load(call.runtime.store, call.instance_id, authorization_id)
    if not state.exists:
        return {}
    await call.require("user.grant.delete", org_id=state.owner, project_id=state.project_id)
    stored = await call.runtime.store.push(
        authorizations.remove_authorization(state), creator=call.user_id
    )
    return {"deletionDate": timestamp(stored[-1].created_at or datetime.now(UTC))}


# -- list --------------------------------------------------------------------------------

_users = users_table.alias("u")
_user_orgs = orgs_table.alias("uo")
_orgs = orgs_table.alias("o")
_projects = projects.projects_table.alias("p")
_display_name = func.coalesce(func.nullif(_users.c.display_name, ""), _users.c.name)
_login_name = _users.c.username + "@" + _user_orgs.c.primary_domain

SORT_COLUMNS = {
    None: authorizations_table.c.created_at,
    "AUTHORIZATION_FIELD_NAME_UNSPECIFIED": authorizations_table.c.created_at,
    "AUTHORIZATION_FIELD_NAME_CREATED_DATE": authorizations_table.c.created_at,
    "AUTHORIZATION_FIELD_NAME_CHANGED_DATE": authorizations_table.c.changed_at,
    "AUTHORIZATION_FIELD_NAME_ID": authorizations_table.c.id,
    "AUTHORIZATION_FIELD_NAME_USER_ID": authorizations_table.c.user_id,
    "AUTHORIZATION_FIELD_NAME_PROJECT_ID": authorizations_table.c.project_id,
    "AUTHORIZATION_FIELD_NAME_ORGANIZATION_ID": authorizations_table.c.resource_owner,
    "AUTHORIZATION_FIELD_NAME_USER_ORGANIZATION_ID": _users.c.resource_owner,
}


def text_filter(
    column: Any, value: str, method: str | None, field_name: str
) -> ColumnElement[bool]:
    """A TEXT_FILTER_METHOD_* condition (the newer services' name of TEXT_QUERY_METHOD_*)."""
    query_method = None
    if method is not None:
        query_method = "TEXT_QUERY_METHOD_" + method.removeprefix("TEXT_FILTER_METHOD_")
        if not method.startswith("TEXT_FILTER_METHOD_") or query_method not in TEXT_METHODS:
            raise invalid(f"{field_name}.method", f"unknown method {method!r}")
    return text_condition(column, value, query_method, field_name)


def _filter(f: AuthorizationsSearchFilter, i: int) -> ColumnElement[bool]:
    a, r = authorizations_table, authorization_roles_table
    at = f"filters.{i}"
    if f.authorization_ids is not None:
        return a.c.id.in_(f.authorization_ids.ids)
    if f.in_user_ids is not None:
        return a.c.user_id.in_(f.in_user_ids.ids)
    if f.organization_id is not None:
        return a.c.resource_owner == f.organization_id.id
    if f.project_grant_id is not None:
        return a.c.project_grant_id == f.project_grant_id.id
    if f.project_id is not None:
        return a.c.project_id == f.project_id.id
    if f.project_name is not None:
        q = f.project_name
        return text_filter(_projects.c.name, q.name, q.method, f"{at}.projectName")
    if f.role_key is not None:
        q = f.role_key
        cond = text_filter(r.c.key, q.key, q.method, f"{at}.roleKey")
        return a.c.id.in_(
            select(r.c.authorization_id).where(r.c.instance_id == a.c.instance_id, cond)
        )
    if f.state is not None:
        state = {v: k for k, v in STATES.items()}.get(f.state.state)
        if state is None:
            raise invalid(
                f"{at}.state.state",
                f"expected STATE_ACTIVE or STATE_INACTIVE, got {f.state.state!r}",
            )
        return a.c.state == state
    if f.user_display_name is not None:
        q = f.user_display_name
        return text_filter(_display_name, q.display_name, q.method, f"{at}.userDisplayName")
    if f.user_organization_id is not None:
        return _users.c.resource_owner == f.user_organization_id.id
    if f.user_preferred_login_name is not None:
        q = f.user_preferred_login_name
        return text_filter(_login_name, q.login_name, q.method, f"{at}.userPreferredLoginName")
    raise invalid(
        at, "set one filter (authorizationIds, inUserIds, projectId, roleKey, state, ...)"
    )


@service.rpc("ListAuthorizations", request=ListAuthorizationsRequest)
async def list_authorizations(call: Call, req: ListAuthorizationsRequest) -> dict[str, Any]:
    """Search the authorizations the caller may read (its own included)."""
    offset, limit, asc = paging(req.pagination, "pagination")
    sort = sort_column(SORT_COLUMNS, req.sorting_column)
    a = authorizations_table
    conditions: list[Any] = [a.c.instance_id == call.instance_id]
    conditions += [_filter(f, i) for i, f in enumerate(req.filters)]
    visible = await call.visible_orgs("user.grant.read")
    if visible is not None:
        own_projects = await projects_with_permission(call, "user.grant.read")
        conditions.append(
            or_(
                a.c.resource_owner.in_(visible),
                a.c.project_id.in_(own_projects),
                a.c.user_id == call.user_id,
            )
        )
    joined = (
        a.outerjoin(
            _users, (_users.c.instance_id == a.c.instance_id) & (_users.c.id == a.c.user_id)
        )
        .outerjoin(
            _user_orgs,
            (_user_orgs.c.instance_id == a.c.instance_id)
            & (_user_orgs.c.id == _users.c.resource_owner),
        )
        .outerjoin(
            _orgs, (_orgs.c.instance_id == a.c.instance_id) & (_orgs.c.id == a.c.resource_owner)
        )
        .outerjoin(
            _projects,
            (_projects.c.instance_id == a.c.instance_id) & (_projects.c.id == a.c.project_id),
        )
    )
    order = ordering(asc, sort, a.c.id)
    columns = [
        a,
        _users.c.username,
        _display_name.label("user_display_name"),
        _users.c.resource_owner.label("user_org"),
        _user_orgs.c.primary_domain.label("user_domain"),
        _orgs.c.name.label("org_name"),
        _projects.c.name.label("project_name"),
    ]
    async with call.runtime.db.read() as conn:
        query = select(*columns).select_from(joined)
        total, rows = await read_page(conn, joined, conditions, order, offset, limit, query)
        roles = await _roles(conn, call.instance_id, [row.id for row in rows])
    return {
        "pagination": pagination(total, limit),
        "authorizations": [_authorization_json(row, roles.get(row.id, [])) for row in rows],
    }


async def _roles(
    conn: Any, instance_id: str, authorization_ids: list[str]
) -> dict[str, list[dict[str, str]]]:
    if not authorization_ids:
        return {}
    r, pr = authorization_roles_table, projects.project_roles_table
    rows = await conn.execute(
        select(r.c.authorization_id, r.c.key, pr.c.display_name, pr.c.group)
        .outerjoin(
            pr,
            (pr.c.instance_id == r.c.instance_id)
            & (pr.c.project_id == r.c.project_id)
            & (pr.c.key == r.c.key),
        )
        .where(r.c.instance_id == instance_id, r.c.authorization_id.in_(authorization_ids))
        .order_by(r.c.authorization_id, r.c.key)
    )
    out: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        out.setdefault(row.authorization_id, []).append(
            {"key": row.key, "displayName": row.display_name or "", "group": row.group or ""}
        )
    return out


def _authorization_json(row: Any, roles: list[dict[str, str]]) -> dict[str, Any]:
    login_name = f"{row.username}@{row.user_domain}" if row.user_domain else (row.username or "")
    return {
        "id": row.id,
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "project": {
            "id": row.project_id,
            "name": row.project_name or "",
            "organizationId": row.resource_owner,
        },
        "organization": {"id": row.resource_owner, "name": row.org_name or ""},
        "user": {
            "id": row.user_id,
            "preferredLoginName": login_name,
            "displayName": row.user_display_name or "",
            "organizationId": row.user_org or "",
        },
        "state": STATES.get(row.state, "STATE_UNSPECIFIED"),
        "roles": roles,
    }
