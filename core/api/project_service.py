"""zitadel.project.v2.ProjectService: projects and their roles.

Projects belong to an org (`organizationId`, else the `x-zitadel-orgid`
header, else the caller's org). Permissions are checked on the project's org
and on the project itself, so a PROJECT_OWNER of one project manages exactly
that project. Project grants (sharing a project with another org) are not
served yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, or_, select

from donjon.core import ids
from donjon.core.api.auth import projects_with_permission
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
    load_existing,
    not_found,
    timestamp,
)
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
    text_condition,
)
from donjon.core.events import AggregateChanges
from donjon.core.identity import members, orgs, projects

service = Service("zitadel.project.v2.ProjectService")

STATES = {
    projects.ACTIVE: "PROJECT_STATE_ACTIVE",
    projects.INACTIVE: "PROJECT_STATE_INACTIVE",
}
PRIVATE_LABELING = {
    projects.PRIVATE_LABELING_UNSPECIFIED: "PRIVATE_LABELING_SETTING_UNSPECIFIED",
    projects.PRIVATE_LABELING_ENFORCE_PROJECT_RESOURCE_OWNER_POLICY: (
        "PRIVATE_LABELING_SETTING_ENFORCE_PROJECT_RESOURCE_OWNER_POLICY"
    ),
    projects.PRIVATE_LABELING_ALLOW_LOGIN_USER_RESOURCE_OWNER_POLICY: (
        "PRIVATE_LABELING_SETTING_ALLOW_LOGIN_USER_RESOURCE_OWNER_POLICY"
    ),
}
TEXT_FILTER_METHODS = (
    "TEXT_FILTER_METHOD_EQUALS",
    "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_STARTS_WITH",
    "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
    "TEXT_FILTER_METHOD_CONTAINS",
    "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_ENDS_WITH",
    "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE",
)
MAX_ID = 200


# -- messages ---------------------------------------------------------------------------


class CreateProjectRequest(Message):
    organization_id: str = ""
    project_id: str = ""
    name: str = ""
    project_role_assertion: bool = False
    authorization_required: bool = False
    project_access_required: bool = False
    private_labeling_setting: str | None = None


class ProjectIDRequest(Message):
    project_id: str = ""


class UpdateProjectRequest(Message):
    project_id: str = ""
    name: str | None = None
    project_role_assertion: bool | None = None
    authorization_required: bool | None = None
    project_access_required: bool | None = None
    private_labeling_setting: str | None = None


class InIDsFilter(Message):
    ids: list[str] = []


class OrganizationIDFilter(Message):
    organization_id: str = ""
    type: str | None = None


class ProjectNameFilter(Message):
    project_name: str = ""
    method: str | None = None


class ProjectSearchFilter(Message):
    in_project_ids_filter: InIDsFilter | None = None
    organization_id_filter: OrganizationIDFilter | None = None
    project_name_filter: ProjectNameFilter | None = None


class ListProjectsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[ProjectSearchFilter] = []


class AddProjectRoleRequest(Message):
    project_id: str = ""
    role_key: str = ""
    display_name: str = ""
    group: str = ""


class UpdateProjectRoleRequest(Message):
    project_id: str = ""
    role_key: str = ""
    display_name: str | None = None
    group: str | None = None


class RemoveProjectRoleRequest(Message):
    project_id: str = ""
    role_key: str = ""


class RoleKeyFilter(Message):
    key: str = ""
    method: str | None = None


class RoleDisplayNameFilter(Message):
    display_name: str = ""
    method: str | None = None


class ProjectRoleSearchFilter(Message):
    display_name_filter: RoleDisplayNameFilter | None = None
    role_key_filter: RoleKeyFilter | None = None


class ListProjectRolesRequest(Message):
    project_id: str = ""
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[ProjectRoleSearchFilter] = []


# -- helpers shared with the application service ---------------------------------------


async def project_state(
    call: Call, project_id: str, field_name: str = "projectId", *, permission: str = ""
) -> projects.ProjectState:
    """The project's write model; invalid_argument when the id is empty, not_found when unknown,
    then permission_denied unless the caller holds `permission` (when given) on the project."""
    state = await load_existing(call, projects.ProjectState, project_id, field_name, "project")
    if permission:
        await call.require(permission, org_id=state.owner, project_id=state.id)
    return state


def filter_text(column: Any, value: str, method: str | None, field_name: str) -> Any:
    """The condition of a v2 text filter (`TEXT_FILTER_METHOD_*`, EQUALS when absent)."""
    if method is not None and method not in TEXT_FILTER_METHODS:
        raise invalid(f"{field_name}.method", f"unknown method {method!r}")
    legacy = (method or "TEXT_FILTER_METHOD_EQUALS").replace("_FILTER_", "_QUERY_")
    return text_condition(column, value, legacy, field_name)


async def readable(call: Call, permission: str, owner_column: Any, project_column: Any) -> Any:
    """A condition on rows of projects or their parts: those on which the caller holds
    `permission`, through its org or through a project membership (None: all)."""
    orgs_ = await call.visible_orgs(permission)
    if orgs_ is None:
        return None
    project_ids = await projects_with_permission(call, permission)
    parts = []
    if orgs_:
        parts.append(owner_column.in_(orgs_))
    if project_ids:
        parts.append(project_column.in_(project_ids))
    return or_(*parts) if parts else false()


def _private_labeling(field_name: str, value: str | None) -> int | None:
    if value is None:
        return None
    for number, name in PRIVATE_LABELING.items():
        if name == value:
            return number
    raise invalid(field_name, f"unknown setting {value!r}")


def _name(value: str, field_name: str = "name") -> str:
    try:
        return projects.check_project_name(value)
    except ValueError as exc:
        raise invalid(field_name, str(exc)) from None


def _role_text(value: str, field_name: str) -> str:
    try:
        return projects.check_role_text(value)
    except ValueError as exc:
        raise invalid(field_name, str(exc)) from None


def project(row: Any) -> dict[str, Any]:
    return {
        "projectId": row.id,
        "organizationId": row.resource_owner,
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "name": row.name,
        "state": STATES.get(row.state, "PROJECT_STATE_UNSPECIFIED"),
        "projectRoleAssertion": row.project_role_assertion,
        "authorizationRequired": row.authorization_required,
        "projectAccessRequired": row.project_access_required,
        "privateLabelingSetting": PRIVATE_LABELING.get(
            row.private_labeling_setting, "PRIVATE_LABELING_SETTING_UNSPECIFIED"
        ),
    }


def project_role(row: Any) -> dict[str, Any]:
    return {
        "projectId": row.project_id,
        "key": row.key,
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "displayName": row.display_name,
        "group": row.group,
    }


# -- projects ---------------------------------------------------------------------------


@service.rpc("CreateProject", request=CreateProjectRequest)
async def create_project(call: Call, req: CreateProjectRequest) -> dict[str, Any]:
    """Create a project in an organization (organizationId, else the context org).

    A creator who may create but not manage projects in the org (an
    ORG_PROJECT_CREATOR) becomes the new project's PROJECT_OWNER, so it can
    manage what it created.
    """
    org_id = req.organization_id.strip() or call.context_org()
    await call.require("project.create", org_id=org_id)
    name = _name(req.name)
    setting = _private_labeling("privateLabelingSetting", req.private_labeling_setting)
    project_id = req.project_id.strip()
    if len(project_id) > MAX_ID or any(c.isspace() for c in project_id):
        raise invalid("projectId", f"must be at most {MAX_ID} characters, without spaces")
    org = await orgs.OrgState.load(call.runtime.store, call.instance_id, org_id)
    if not org.exists:
        raise ConnectError("not_found", f"organizationId: organization {org_id} not found")
    if project_id:
        existing = await projects.ProjectState.load(
            call.runtime.store, call.instance_id, project_id
        )
        if existing.sequence:
            raise ConnectError("already_exists", "projectId: a project with this id exists")
    else:
        project_id = ids.new_id()
    changes: list[AggregateChanges] = [
        projects.add_project(
            call.instance_id,
            org_id,
            project_id,
            name,
            project_role_assertion=req.project_role_assertion,
            project_role_check=req.authorization_required,
            has_project_check=req.project_access_required,
            private_labeling_setting=setting or 0,
        )
    ]
    if call.user_id and not await call.allowed("project.write", org_id=org_id):
        changes.append(
            members.add_member(
                members.PROJECT,
                call.instance_id,
                project_id,
                org_id,
                call.user_id,
                ["PROJECT_OWNER"],
            )
        )
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"projectId": project_id, "creationDate": timestamp(stored[0].created_at)}


@service.rpc("GetProject", request=ProjectIDRequest)
async def get_project(call: Call, req: ProjectIDRequest) -> dict[str, Any]:
    """A project by its id."""
    if not req.project_id:
        raise invalid("projectId", "is required")
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(projects.projects_table).where(
                    projects.projects_table.c.instance_id == call.instance_id,
                    projects.projects_table.c.id == req.project_id,
                )
            )
        ).first()
    if row is None:
        raise not_found("project")
    await call.require("project.read", org_id=row.resource_owner, project_id=row.id)
    return {"project": project(row)}


def _project_filter(f: ProjectSearchFilter, i: int) -> Any:
    t = projects.projects_table
    where = f"filters.{i}"
    if f.in_project_ids_filter is not None:
        return t.c.id.in_(f.in_project_ids_filter.ids)
    if f.organization_id_filter is not None:
        kind = f.organization_id_filter.type or "OWNED"
        if kind not in ("OWNED", "GRANTED", "OWNED_OR_GRANTED", "TYPE_UNSPECIFIED"):
            raise invalid(f"{where}.organizationIdFilter.type", f"unknown type {kind!r}")
        if kind == "GRANTED":
            return false()  # no project grants yet: nothing is granted to an org
        return t.c.resource_owner == f.organization_id_filter.organization_id
    if f.project_name_filter is not None:
        return filter_text(
            t.c.name,
            f.project_name_filter.project_name,
            f.project_name_filter.method,
            f"{where}.projectNameFilter",
        )
    raise invalid(where, "set one of inProjectIdsFilter, organizationIdFilter, projectNameFilter")


@service.rpc("ListProjects", request=ListProjectsRequest)
async def list_projects(call: Call, req: ListProjectsRequest) -> dict[str, Any]:
    """Search the projects the caller may read."""
    offset, limit, asc = paging(req.pagination, "pagination")
    t = projects.projects_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    conditions += [_project_filter(f, i) for i, f in enumerate(req.filters)]
    sorts = {
        None: t.c.created_at,
        "PROJECT_FIELD_NAME_UNSPECIFIED": t.c.created_at,
        "PROJECT_FIELD_NAME_ID": t.c.id,
        "PROJECT_FIELD_NAME_CREATION_DATE": t.c.created_at,
        "PROJECT_FIELD_NAME_CHANGE_DATE": t.c.changed_at,
        "PROJECT_FIELD_NAME_NAME": t.c.name,
    }
    sort = sort_column(sorts, req.sorting_column)
    visible = await readable(call, "project.read", t.c.resource_owner, t.c.id)
    if visible is not None:
        conditions.append(visible)
    order = ordering(asc, sort, t.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {"pagination": pagination(total, limit), "projects": [project(r) for r in rows]}


@service.rpc("UpdateProject", request=UpdateProjectRequest)
async def update_project(call: Call, req: UpdateProjectRequest) -> dict[str, Any]:
    """Change a project's name or settings; omitted fields stay as they are."""
    state = await project_state(call, req.project_id, permission="project.write")
    changes = projects.change_project(
        state,
        name=_name(req.name) if req.name is not None else None,
        project_role_assertion=req.project_role_assertion,
        project_role_check=req.authorization_required,
        has_project_check=req.project_access_required,
        private_labeling_setting=_private_labeling(
            "privateLabelingSetting", req.private_labeling_setting
        ),
    )
    if changes is None:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


async def _set_state(call: Call, req: ProjectIDRequest, active: bool) -> dict[str, Any]:
    state = await project_state(call, req.project_id, permission="project.write")
    if (state.state == projects.ACTIVE) == active:
        word = "active" if active else "inactive"
        raise ConnectError("failed_precondition", f"the project is already {word}")
    stored = await call.runtime.store.push(
        projects.set_project_state(state, active), creator=call.user_id
    )
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("DeactivateProject", request=ProjectIDRequest)
async def deactivate_project(call: Call, req: ProjectIDRequest) -> dict[str, Any]:
    """Deactivate a project: its applications can no longer be used to log in."""
    return await _set_state(call, req, False)


@service.rpc("ActivateProject", request=ProjectIDRequest)
async def activate_project(call: Call, req: ProjectIDRequest) -> dict[str, Any]:
    """Reactivate a deactivated project."""
    return await _set_state(call, req, True)


@service.rpc("DeleteProject", request=ProjectIDRequest)
async def delete_project(call: Call, req: ProjectIDRequest) -> dict[str, Any]:
    """Remove a project with its roles, applications and members."""
    state = await project_state(call, req.project_id, permission="project.delete")
    stored = await call.runtime.store.push(projects.remove_project(state), creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at or datetime.now(UTC))}


# -- roles ------------------------------------------------------------------------------


@service.rpc("AddProjectRole", request=AddProjectRoleRequest)
async def add_project_role(call: Call, req: AddProjectRoleRequest) -> dict[str, Any]:
    """Add a role to a project; its key is unique within the project."""
    state = await project_state(call, req.project_id, permission="project.role.write")
    try:
        key = projects.check_role_key(req.role_key)
    except ValueError as exc:
        raise invalid("roleKey", str(exc)) from None
    display_name = _role_text(req.display_name, "displayName")
    if not display_name:
        raise invalid("displayName", "must not be empty")
    group = _role_text(req.group, "group")
    stored = await call.runtime.store.push(
        projects.add_role(state, key, display_name, group), creator=call.user_id
    )
    return {"creationDate": timestamp(stored[-1].created_at)}


async def _role_state(call: Call, project_id: str, role_key: str, permission: str) -> Any:
    state = await project_state(call, project_id, permission=permission)
    if not role_key.strip():
        raise invalid("roleKey", "is required")
    if role_key.strip() not in state.roles:
        raise not_found("project role")
    return state


@service.rpc("UpdateProjectRole", request=UpdateProjectRoleRequest)
async def update_project_role(call: Call, req: UpdateProjectRoleRequest) -> dict[str, Any]:
    """Change a role's display name or group (its key cannot change)."""
    state = await _role_state(call, req.project_id, req.role_key, "project.role.write")
    display_name = (
        _role_text(req.display_name, "displayName") if req.display_name is not None else None
    )
    if display_name == "":
        raise invalid("displayName", "must not be empty")
    group = _role_text(req.group, "group") if req.group is not None else None
    changes = projects.change_role(state, req.role_key.strip(), display_name, group)
    if changes is None:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("RemoveProjectRole", request=RemoveProjectRoleRequest)
async def remove_project_role(call: Call, req: RemoveProjectRoleRequest) -> dict[str, Any]:
    """Remove a role from a project."""
    state = await _role_state(call, req.project_id, req.role_key, "project.role.delete")
    stored = await call.runtime.store.push(
        projects.remove_role(state, req.role_key.strip()), creator=call.user_id
    )
    return {"removalDate": timestamp(stored[-1].created_at)}


def _role_filter(f: ProjectRoleSearchFilter, i: int) -> Any:
    t = projects.project_roles_table
    where = f"filters.{i}"
    if f.role_key_filter is not None:
        return filter_text(
            t.c.key, f.role_key_filter.key, f.role_key_filter.method, f"{where}.roleKeyFilter"
        )
    if f.display_name_filter is not None:
        return filter_text(
            t.c.display_name,
            f.display_name_filter.display_name,
            f.display_name_filter.method,
            f"{where}.displayNameFilter",
        )
    raise invalid(where, "set one of roleKeyFilter, displayNameFilter")


@service.rpc("ListProjectRoles", request=ListProjectRolesRequest)
async def list_project_roles(call: Call, req: ListProjectRolesRequest) -> dict[str, Any]:
    """Search the roles of a project."""
    offset, limit, asc = paging(req.pagination, "pagination")
    t = projects.project_roles_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id, t.c.project_id == req.project_id]
    conditions += [_role_filter(f, i) for i, f in enumerate(req.filters)]
    sorts = {
        None: t.c.created_at,
        "PROJECT_ROLE_FIELD_NAME_UNSPECIFIED": t.c.created_at,
        "PROJECT_ROLE_FIELD_NAME_KEY": t.c.key,
        "PROJECT_ROLE_FIELD_NAME_CREATION_DATE": t.c.created_at,
        "PROJECT_ROLE_FIELD_NAME_CHANGE_DATE": t.c.changed_at,
    }
    sort = sort_column(sorts, req.sorting_column)
    if not req.project_id:
        raise invalid("projectId", "is required")
    async with call.runtime.db.read() as conn:
        owner = await projects.get_project(conn, call.instance_id, req.project_id)
    if owner is None:
        raise not_found("project")
    await call.require(
        "project.role.read", org_id=str(owner["resource_owner"]), project_id=req.project_id
    )
    order = ordering(asc, sort, t.c.key)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {
        "pagination": pagination(total, limit),
        "projectRoles": [project_role(r) for r in rows],
    }
