"""zitadel.org.v2.OrganizationService: create, list, rename, deactivate, reactivate, delete orgs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from donjon.core import ids
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    details,
    invalid,
    list_details,
    load_existing,
    timestamp,
)
from donjon.core.api.queries import (
    ListQuery,
    ordering,
    paging,
    read_page,
    sort_column,
    text_condition,
)
from donjon.core.api.user_service_create import codes as new_user_codes
from donjon.core.api.user_service_create import plan_org_admin
from donjon.core.events import AggregateChanges
from donjon.core.identity import members, orgs
from donjon.core.identity.users import users_table
from donjon.core.instance import instance_domains_table

service = Service("zitadel.org.v2.OrganizationService")

STATES = {
    orgs.ACTIVE: "ORGANIZATION_STATE_ACTIVE",
    orgs.INACTIVE: "ORGANIZATION_STATE_INACTIVE",
}


class AdminRequest(Message):
    roles: list[str] = []
    user_id: str | None = None
    human: dict[str, Any] | None = None


class AddOrganizationRequest(Message):
    name: str = ""
    admins: list[AdminRequest] = []
    organization_id: str | None = None
    org_id: str | None = None


class OrganizationIDRequest(Message):
    organization_id: str = ""


class UpdateOrganizationRequest(Message):
    organization_id: str = ""
    name: str = ""


class NameQuery(Message):
    name: str = ""
    method: str | None = None


class DomainQuery(Message):
    domain: str = ""
    method: str | None = None


class StateQuery(Message):
    state: str = ""


class IDQuery(Message):
    id: str = ""


class SearchQuery(Message):
    name_query: NameQuery | None = None
    domain_query: DomainQuery | None = None
    state_query: StateQuery | None = None
    id_query: IDQuery | None = None
    default_query: dict[str, Any] | None = None


class ListOrganizationsRequest(Message):
    query: ListQuery | None = None
    sorting_column: str | None = None
    queries: list[SearchQuery] = []


async def instance_primary_domain(call: Call) -> str:
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(instance_domains_table.c.domain)
                .where(instance_domains_table.c.instance_id == call.instance_id)
                .order_by(instance_domains_table.c.is_primary.desc())
            )
        ).first()
    return row[0] if row else call.runtime.settings.ExternalDomain


async def org_state(
    call: Call, org_id: str, field_name: str = "organizationId", *, permission: str = ""
) -> orgs.OrgState:
    """The org's write model; invalid_argument when the id is empty, not_found when unknown,
    then permission_denied unless the caller holds `permission` (when given) on the org."""
    state = await load_existing(call, orgs.OrgState, org_id, field_name, "organization")
    if permission:
        await call.require(permission, org_id=state.id)
    return state


def organization(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "details": details(
            sequence=row.sequence,
            changed_at=row.changed_at,
            owner=row.id,
            created_at=row.created_at,
        ),
        "state": STATES.get(row.state, "ORGANIZATION_STATE_UNSPECIFIED"),
        "name": row.name,
        "primaryDomain": row.primary_domain,
    }


@service.rpc("AddOrganization", request=AddOrganizationRequest)
async def add_organization(call: Call, req: AddOrganizationRequest) -> dict[str, Any]:
    """Create an organization with its generated domain, optionally with administrators."""
    await call.require("org.create")
    try:
        name = orgs.check_org_name(req.name)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None
    org_id = (req.organization_id or req.org_id or "").strip() or ids.new_id()
    changes: list[AggregateChanges] = [
        orgs.add_org(call.instance_id, org_id, name, await instance_primary_domain(call))
    ]
    created_admins: list[dict[str, Any]] = []
    for i, admin in enumerate(req.admins):
        roles = admin.roles or ["ORG_OWNER"]
        if admin.human is not None:
            # A new human user of the new org, created in the same push.
            planned = await plan_org_admin(call, org_id, admin.human, f"admins.{i}.human.")
            changes.append(planned.changes)
            user_id = planned.user_id
            created: dict[str, Any] = {"userId": user_id, **new_user_codes(planned)}
        else:
            if not admin.user_id:
                raise invalid(f"admins.{i}.userId", "is required")
            async with call.runtime.db.read() as conn:
                user = (
                    await conn.execute(
                        select(users_table.c.id).where(
                            users_table.c.instance_id == call.instance_id,
                            users_table.c.id == admin.user_id,
                        )
                    )
                ).first()
            if user is None:
                raise invalid(f"admins.{i}.userId", f"no user {admin.user_id} in this instance")
            user_id = admin.user_id
            created = {"userId": user_id}
        try:
            changes.append(
                members.add_member(members.ORG, call.instance_id, org_id, org_id, user_id, roles)
            )
        except ValueError as exc:
            raise invalid(f"admins.{i}.roles", str(exc)) from None
        created_admins.append(created)
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    org_events = [e for e in stored if e.aggregate_id == org_id and e.aggregate_type == "org"]
    return {
        "details": details(org_events),
        "organizationId": org_id,
        "createdAdmins": created_admins,
    }


def _search_condition(q: SearchQuery, i: int) -> Any:
    t = orgs.orgs_table
    where = f"queries.{i}"
    if q.name_query is not None:
        return text_condition(
            t.c.name, q.name_query.name, q.name_query.method, f"{where}.name_query"
        )
    if q.domain_query is not None:
        d = orgs.org_domains_table
        cond = text_condition(
            d.c.domain, q.domain_query.domain, q.domain_query.method, f"{where}.domain_query"
        )
        return t.c.id.in_(select(d.c.org_id).where(d.c.instance_id == t.c.instance_id, cond))
    if q.state_query is not None:
        state = {v: k for k, v in STATES.items()}.get(q.state_query.state)
        if state is None:
            raise invalid(f"{where}.state_query.state", f"unknown state {q.state_query.state!r}")
        return t.c.state == state
    if q.id_query is not None:
        return t.c.id == q.id_query.id
    if q.default_query is not None:
        return None  # resolved by the caller: the instance's default org
    raise invalid(where, "set one of nameQuery, domainQuery, stateQuery, idQuery, defaultQuery")


@service.rpc("ListOrganizations", request=ListOrganizationsRequest)
async def list_organizations(call: Call, req: ListOrganizationsRequest) -> dict[str, Any]:
    """Search the organizations the caller may read."""
    offset, limit, asc = paging(req.query)
    t = orgs.orgs_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    for i, q in enumerate(req.queries):
        cond = _search_condition(q, i)
        if cond is None:
            conditions.append(t.c.id == await default_org_id(call))
        else:
            conditions.append(cond)
    visible = await call.visible_orgs("org.read")
    if visible is not None:
        conditions.append(t.c.id.in_(visible) if visible else or_(False))
    sorts = {
        None: t.c.created_at,
        "ORGANIZATION_FIELD_NAME_UNSPECIFIED": t.c.created_at,
        "ORGANIZATION_FIELD_NAME_CREATION_DATE": t.c.created_at,
        "ORGANIZATION_FIELD_NAME_NAME": t.c.name,
    }
    sort = sort_column(sorts, req.sorting_column)
    order = ordering(asc, sort, t.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {
        "details": list_details(total),
        "sortingColumn": req.sorting_column or "ORGANIZATION_FIELD_NAME_UNSPECIFIED",
        "result": [organization(r) for r in rows],
    }


async def default_org_id(call: Call) -> str:
    """The instance's default org: the first one created."""
    t = orgs.orgs_table
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(t.c.id)
                .where(t.c.instance_id == call.instance_id)
                .order_by(t.c.created_at, t.c.id)
                .limit(1)
            )
        ).first()
    return row[0] if row else ""


@service.rpc("UpdateOrganization", request=UpdateOrganizationRequest)
async def update_organization(call: Call, req: UpdateOrganizationRequest) -> dict[str, Any]:
    """Rename an organization."""
    state = await org_state(call, req.organization_id, permission="org.write")
    try:
        name = orgs.check_org_name(req.name)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None
    if name == state.name:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(orgs.rename_org(state, name), creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


async def _set_state(call: Call, req: OrganizationIDRequest, target: str) -> dict[str, Any]:
    state = await org_state(call, req.organization_id, permission="org.write")
    if state.state == target:
        word = "active" if target == orgs.ACTIVE else "inactive"
        raise ConnectError("failed_precondition", f"the organization is already {word}")
    event = orgs.OrgReactivated() if target == orgs.ACTIVE else orgs.OrgDeactivated()
    stored = await call.runtime.store.push(
        AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence),
        creator=call.user_id,
    )
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("DeactivateOrganization", request=OrganizationIDRequest)
async def deactivate_organization(call: Call, req: OrganizationIDRequest) -> dict[str, Any]:
    """Deactivate an organization: its users can no longer log in."""
    return await _set_state(call, req, orgs.INACTIVE)


@service.rpc("ActivateOrganization", request=OrganizationIDRequest)
async def activate_organization(call: Call, req: OrganizationIDRequest) -> dict[str, Any]:
    """Reactivate a deactivated organization."""
    return await _set_state(call, req, orgs.ACTIVE)


@service.rpc("DeleteOrganization", request=OrganizationIDRequest)
async def delete_organization(call: Call, req: OrganizationIDRequest) -> dict[str, Any]:
    """Remove an organization (not the instance's default one)."""
    state = await org_state(call, req.organization_id, permission="org.delete")
    if state.id == await default_org_id(call):
        raise ConnectError(
            "failed_precondition", "the instance's default organization cannot be deleted"
        )
    changes = [orgs.remove_org(state), *await _org_contents_removal(call, state.id)]
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"deletionDate": timestamp(stored[0].created_at or datetime.now(UTC))}


async def _org_contents_removal(call: Call, org_id: str) -> list[AggregateChanges]:
    """The removal of an org's projects (with their apps) and users, pushed with the org's.

    So that their unique values (user names, client ids, SAML entity ids) are
    free again, and nothing of the org outlives it.
    """
    from donjon.core.identity import projects, user_commands
    from donjon.core.identity.users import UserState

    store = call.runtime.store
    async with call.runtime.db.read() as conn:
        changes = await projects.remove_org_projects(store, conn, call.instance_id, org_id)
        user_ids = (
            (
                await conn.execute(
                    select(users_table.c.id).where(
                        users_table.c.instance_id == call.instance_id,
                        users_table.c.resource_owner == org_id,
                    )
                )
            )
            .scalars()
            .all()
        )
    for user_id in user_ids:
        user = await UserState.load(store, call.instance_id, user_id)
        if user.exists:
            changes.append(user_commands.remove(user))
    return changes
