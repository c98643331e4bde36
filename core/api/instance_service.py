"""zitadel.instance.v2.InstanceService: the instance a request addresses, its domains.

Every method acts on the call's own instance (the one its host resolved to).
An `instanceId` naming another instance is ZITADEL's system-level access,
which donjon does not serve over this API: it fails `permission_denied`.
Operators create instances with `donjon instances create`.

Custom domains route requests to the instance (unique across instances; the
primary and generated ones stay); trusted domains are names the instance may
use in its URLs without routing (behind a proxy, a custom login UI).
Permissions: `iam.read` and `iam.write`, which only instance-level roles
(IAM_OWNER, IAM_OWNER_VIEWER, ...) hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import select

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
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
from donjon.core.instance import (
    InstanceState,
    add_custom_domain,
    add_trusted_domain,
    check_domain,
    check_instance_name,
    instance_domains_table,
    instance_trusted_domains_table,
    instances_table,
    remove_custom_domain,
    remove_trusted_domain,
    rename_instance,
)

service = Service("zitadel.instance.v2.InstanceService")

RUNNING = "STATE_RUNNING"


# -- messages ---------------------------------------------------------------------------


class InstanceIDRequest(Message):
    instance_id: str = ""


class UpdateInstanceRequest(Message):
    instance_id: str = ""
    instance_name: str = ""


class CustomDomainsFilter(Message):
    domains: list[str] = []


class InIDsFilter(Message):
    ids: list[str] = []


class InstanceFilter(Message):
    custom_domains_filter: CustomDomainsFilter | None = None
    in_ids_filter: InIDsFilter | None = None


class ListInstancesRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[InstanceFilter] = []


class DomainFilter(Message):
    domain: str = ""
    method: str | None = None


class CustomDomainFilter(Message):
    domain_filter: DomainFilter | None = None
    generated_filter: bool | None = None
    primary_filter: bool | None = None


class ListCustomDomainsRequest(Message):
    instance_id: str = ""
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[CustomDomainFilter] = []


class CustomDomainRequest(Message):
    instance_id: str = ""
    custom_domain: str = ""


class TrustedDomainFilter(Message):
    domain_filter: DomainFilter | None = None


class ListTrustedDomainsRequest(Message):
    instance_id: str = ""
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[TrustedDomainFilter] = []


class TrustedDomainRequest(Message):
    instance_id: str = ""
    trusted_domain: str = ""


# Responses: for the OpenAPI document (handlers build the same shapes as dicts).


class CustomDomain(Message):
    instance_id: str = ""
    creation_date: str | None = None
    domain: str = ""
    primary: bool = False
    generated: bool = False


class Instance(Message):
    id: str = ""
    change_date: str | None = None
    creation_date: str | None = None
    state: str = RUNNING
    name: str = ""
    version: str = ""
    custom_domains: list[CustomDomain] = []


class GetInstanceResponse(Message):
    instance: Instance | None = None


class PaginationResponse(Message):
    total_result: str = "0"
    applied_limit: str = "0"


class ListInstancesResponse(Message):
    instances: list[Instance] = []
    pagination: PaginationResponse | None = None


class ListCustomDomainsResponse(Message):
    domains: list[CustomDomain] = []
    pagination: PaginationResponse | None = None


class TrustedDomain(Message):
    instance_id: str = ""
    creation_date: str | None = None
    domain: str = ""


class ListTrustedDomainsResponse(Message):
    trusted_domain: list[TrustedDomain] = []
    pagination: PaginationResponse | None = None


class ChangeDateResponse(Message):
    change_date: str | None = None


class CreationDateResponse(Message):
    creation_date: str | None = None


class DeletionDateResponse(Message):
    deletion_date: str | None = None


# -- helpers ----------------------------------------------------------------------------


def own_instance(call: Call, instance_id: str) -> None:
    """Refuse an `instanceId` other than the call's: system-level access is not served."""
    if instance_id and instance_id != call.instance_id:
        raise ConnectError(
            "permission_denied",
            "instanceId: only the instance the request addresses can be read or changed"
            " here (system-level access to other instances is not served)",
        )


async def instance_state(call: Call) -> InstanceState:
    state = await InstanceState.load(call.runtime.store, call.instance_id, call.instance_id)
    if not state.exists:
        raise not_found("instance")
    return state


def donjon_version() -> str:
    try:
        return version("donjon")
    except PackageNotFoundError:
        return ""


def custom_domain(row: Any) -> dict[str, Any]:
    return {
        "instanceId": row.instance_id,
        "creationDate": timestamp(row.created_at),
        "domain": row.domain,
        "primary": bool(row.is_primary),
        "generated": bool(row.generated),
    }


async def read_instance(call: Call) -> dict[str, Any]:
    t, d = instances_table, instance_domains_table
    async with call.runtime.db.read() as conn:
        row = (await conn.execute(select(t).where(t.c.id == call.instance_id))).first()
        domains = (
            await conn.execute(
                select(d)
                .where(d.c.instance_id == call.instance_id)
                .order_by(d.c.is_primary.desc(), d.c.created_at, d.c.domain)
            )
        ).all()
    if row is None:
        raise not_found("instance")
    return {
        "id": row.id,
        "changeDate": timestamp(row.changed_at),
        "creationDate": timestamp(row.created_at),
        "state": RUNNING,
        "name": row.name,
        "version": donjon_version(),
        "customDomains": [custom_domain(r) for r in domains],
    }


def domain_value(field_name: str, value: str) -> str:
    try:
        return check_domain(value)
    except ValueError as exc:
        raise invalid(field_name, str(exc)) from None


# -- the instance ------------------------------------------------------------------------


@service.rpc("GetInstance", request=InstanceIDRequest, response=GetInstanceResponse)
async def get_instance(call: Call, req: InstanceIDRequest) -> dict[str, Any]:
    """The instance the request addresses: name, state, version and domains."""
    own_instance(call, req.instance_id)
    await call.require("iam.read")
    return {"instance": await read_instance(call)}


@service.rpc("UpdateInstance", request=UpdateInstanceRequest, response=ChangeDateResponse)
async def update_instance(call: Call, req: UpdateInstanceRequest) -> dict[str, Any]:
    """Rename the instance."""
    own_instance(call, req.instance_id)
    await call.require("iam.write")
    try:
        name = check_instance_name(req.instance_name)
    except ValueError as exc:
        raise invalid("instanceName", str(exc)) from None
    state = await instance_state(call)
    if name == state.name:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(rename_instance(state, name), creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


@service.rpc("ListInstances", request=ListInstancesRequest, response=ListInstancesResponse)
async def list_instances(call: Call, req: ListInstancesRequest) -> dict[str, Any]:
    """The instances the caller may read: only the one the request addresses."""
    offset, limit, _ = paging(req.pagination, "pagination")
    if req.sorting_column not in (
        None,
        "FIELD_NAME_UNSPECIFIED",
        "FIELD_NAME_ID",
        "FIELD_NAME_NAME",
        "FIELD_NAME_CREATION_DATE",
    ):
        raise invalid("sortingColumn", f"unknown column {req.sorting_column!r}")
    await call.require("iam.read")
    instance = await read_instance(call)
    matches = True
    for i, f in enumerate(req.filters):
        if f.in_ids_filter is not None:
            matches = matches and instance["id"] in f.in_ids_filter.ids
        elif f.custom_domains_filter is not None:
            wanted = {d.strip().lower() for d in f.custom_domains_filter.domains}
            ours = {d["domain"] for d in instance["customDomains"]}
            matches = matches and bool(wanted & ours)
        else:
            raise invalid(f"filters.{i}", "set one of customDomainsFilter, inIdsFilter")
    found = [instance] if matches else []
    return {
        "instances": found[offset : offset + limit],
        "pagination": pagination(len(found), limit),
    }


# -- custom domains ----------------------------------------------------------------------

DOMAIN_SORT = {
    None: instance_domains_table.c.created_at,
    "DOMAIN_FIELD_NAME_UNSPECIFIED": instance_domains_table.c.created_at,
    "DOMAIN_FIELD_NAME_CREATION_DATE": instance_domains_table.c.created_at,
    "DOMAIN_FIELD_NAME_DOMAIN": instance_domains_table.c.domain,
    "DOMAIN_FIELD_NAME_PRIMARY": instance_domains_table.c.is_primary,
    "DOMAIN_FIELD_NAME_GENERATED": instance_domains_table.c.generated,
}


def _domain_condition(column: Any, f: DomainFilter, at: str) -> Any:
    """A `domainFilter`: domains are stored in lower case."""
    return text_condition(column, f.domain.lower(), f.method, f"{at}.domainFilter")


@service.rpc(
    "ListCustomDomains", request=ListCustomDomainsRequest, response=ListCustomDomainsResponse
)
async def list_custom_domains(call: Call, req: ListCustomDomainsRequest) -> dict[str, Any]:
    """The domains that route requests to the instance."""
    own_instance(call, req.instance_id)
    offset, limit, asc = paging(req.pagination, "pagination")
    d = instance_domains_table
    sort = sort_column(DOMAIN_SORT, req.sorting_column)
    await call.require("iam.read")
    conditions: list[Any] = [d.c.instance_id == call.instance_id]
    for i, f in enumerate(req.filters):
        if f.domain_filter is not None:
            conditions.append(_domain_condition(d.c.domain, f.domain_filter, f"filters.{i}"))
        elif f.generated_filter is not None:
            conditions.append(d.c.generated == f.generated_filter)
        elif f.primary_filter is not None:
            conditions.append(d.c.is_primary == f.primary_filter)
        else:
            raise invalid(f"filters.{i}", "set one of domainFilter, generatedFilter, primaryFilter")
    order = ordering(asc, sort, d.c.domain)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, d, conditions, order, offset, limit)
    return {
        "domains": [custom_domain(r) for r in rows],
        "pagination": pagination(total, limit),
    }


@service.rpc("AddCustomDomain", request=CustomDomainRequest, response=CreationDateResponse)
async def add_custom_domain_rpc(call: Call, req: CustomDomainRequest) -> dict[str, Any]:
    """Route a further domain to the instance; no other instance may have it."""
    own_instance(call, req.instance_id)
    domain = domain_value("customDomain", req.custom_domain)
    await call.require("iam.write")
    state = await instance_state(call)
    try:
        changes = add_custom_domain(state, domain)
    except ValueError as exc:
        raise ConnectError(
            "already_exists", f"{exc} (Errors.Instance.Domain.AlreadyExists)"
        ) from None
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"creationDate": timestamp(stored[-1].created_at)}


@service.rpc("RemoveCustomDomain", request=CustomDomainRequest, response=DeletionDateResponse)
async def remove_custom_domain_rpc(call: Call, req: CustomDomainRequest) -> dict[str, Any]:
    """Stop routing a domain to the instance (not the primary or a generated one)."""
    own_instance(call, req.instance_id)
    domain = domain_value("customDomain", req.custom_domain)
    await call.require("iam.write")
    state = await instance_state(call)
    try:
        changes = remove_custom_domain(state, domain)
    except LookupError:
        raise not_found(f"custom domain {domain}") from None
    except ValueError as exc:
        raise ConnectError("failed_precondition", str(exc)) from None
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at or datetime.now(UTC))}


# -- trusted domains ---------------------------------------------------------------------

TRUSTED_SORT = {
    None: instance_trusted_domains_table.c.created_at,
    "TRUSTED_DOMAIN_FIELD_NAME_UNSPECIFIED": instance_trusted_domains_table.c.created_at,
    "TRUSTED_DOMAIN_FIELD_NAME_CREATION_DATE": instance_trusted_domains_table.c.created_at,
    "TRUSTED_DOMAIN_FIELD_NAME_DOMAIN": instance_trusted_domains_table.c.domain,
}


@service.rpc(
    "ListTrustedDomains", request=ListTrustedDomainsRequest, response=ListTrustedDomainsResponse
)
async def list_trusted_domains(call: Call, req: ListTrustedDomainsRequest) -> dict[str, Any]:
    """The domains the instance may use in its URLs without routing on them."""
    own_instance(call, req.instance_id)
    offset, limit, asc = paging(req.pagination, "pagination")
    t = instance_trusted_domains_table
    sort = sort_column(TRUSTED_SORT, req.sorting_column)
    await call.require("iam.read")
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    for i, f in enumerate(req.filters):
        if f.domain_filter is None:
            raise invalid(f"filters.{i}", "set domainFilter")
        conditions.append(_domain_condition(t.c.domain, f.domain_filter, f"filters.{i}"))
    order = ordering(asc, sort, t.c.domain)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {
        "trustedDomain": [
            {
                "instanceId": r.instance_id,
                "creationDate": timestamp(r.created_at),
                "domain": r.domain,
            }
            for r in rows
        ],
        "pagination": pagination(total, limit),
    }


@service.rpc("AddTrustedDomain", request=TrustedDomainRequest, response=CreationDateResponse)
async def add_trusted_domain_rpc(call: Call, req: TrustedDomainRequest) -> dict[str, Any]:
    """Trust a domain in the instance's URLs (it does not route requests)."""
    own_instance(call, req.instance_id)
    domain = domain_value("trustedDomain", req.trusted_domain)
    await call.require("iam.write")
    state = await instance_state(call)
    try:
        changes = add_trusted_domain(state, domain)
    except ValueError as exc:
        raise ConnectError("already_exists", str(exc)) from None
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"creationDate": timestamp(stored[-1].created_at)}


@service.rpc("RemoveTrustedDomain", request=TrustedDomainRequest, response=DeletionDateResponse)
async def remove_trusted_domain_rpc(call: Call, req: TrustedDomainRequest) -> dict[str, Any]:
    """Stop trusting a domain."""
    own_instance(call, req.instance_id)
    domain = domain_value("trustedDomain", req.trusted_domain)
    await call.require("iam.write")
    state = await instance_state(call)
    try:
        changes = remove_trusted_domain(state, domain)
    except LookupError:
        raise not_found(f"trusted domain {domain}") from None
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at)}
