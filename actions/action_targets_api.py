"""ActionService targets: CreateTarget, UpdateTarget, DeleteTarget, GetTarget,
ListTargets (see `action_service`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import asc, desc, func, select

from donjon.actions import ssrf, targets
from donjon.actions.action_service_shared import (
    TARGET_DELETE,
    TARGET_READ,
    TARGET_WRITE,
    TEXT_METHODS,
    duration,
    parse_duration,
    service,
)
from donjon.core import ids
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    invalid,
    not_found,
    timestamp,
)
from donjon.core.api.queries import PaginationRequest, paging, text_condition
from donjon.core.identity.secrets import new_secret

_TARGET_SORT = {
    "TARGET_FIELD_NAME_UNSPECIFIED": targets.targets_table.c.created_at,
    "TARGET_FIELD_NAME_ID": targets.targets_table.c.id,
    "TARGET_FIELD_NAME_CREATED_DATE": targets.targets_table.c.created_at,
    "TARGET_FIELD_NAME_CHANGED_DATE": targets.targets_table.c.changed_at,
    "TARGET_FIELD_NAME_NAME": targets.targets_table.c.name,
    "TARGET_FIELD_NAME_TARGET_TYPE": targets.targets_table.c.target_type,
    "TARGET_FIELD_NAME_URL": targets.targets_table.c.endpoint,
    "TARGET_FIELD_NAME_TIMEOUT": targets.targets_table.c.timeout,
    "TARGET_FIELD_NAME_INTERRUPT_ON_ERROR": targets.targets_table.c.interrupt_on_error,
}


class RestWebhook(Message):
    interrupt_on_error: bool = False


class RestCall(Message):
    interrupt_on_error: bool = False


class RestAsync(Message):
    pass


class CreateTargetRequest(Message):
    name: str = ""
    endpoint: str = ""
    timeout: str | None = None
    payload_type: str | None = None
    rest_webhook: RestWebhook | None = None
    rest_call: RestCall | None = None
    rest_async: RestAsync | None = None


class UpdateTargetRequest(Message):
    id: str = ""
    name: str | None = None
    endpoint: str | None = None
    timeout: str | None = None
    payload_type: str | None = None
    expiration_signing_key: str | None = None
    rest_webhook: RestWebhook | None = None
    rest_call: RestCall | None = None
    rest_async: RestAsync | None = None


class TargetIDRequest(Message):
    id: str = ""


class TargetNameFilter(Message):
    target_name: str = ""
    method: str | None = None


class InTargetIDsFilter(Message):
    target_ids: list[str] = []


class TargetSearchFilter(Message):
    target_name_filter: TargetNameFilter | None = None
    in_target_ids_filter: InTargetIDsFilter | None = None


class ListTargetsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[TargetSearchFilter] = []


def check_endpoint(call: Call, value: str) -> str:
    endpoint = value.strip()
    if not endpoint:
        raise invalid("endpoint", "is required")
    if len(endpoint) > targets.MAX_ENDPOINT:
        raise invalid("endpoint", f"must be at most {targets.MAX_ENDPOINT} characters")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise invalid("endpoint", f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("endpoint", "must be an http or https URL with a host")
    if parts.username or parts.password:
        raise invalid("endpoint", "must not carry credentials")
    del port
    problem = ssrf.literal_problem(parts.hostname, call.runtime.settings.Actions.HTTP.AllowedHosts)
    if problem:
        raise invalid("endpoint", problem)
    return endpoint


def target_kind(
    req: CreateTargetRequest | UpdateTargetRequest,
) -> tuple[str, bool] | None:
    """(type, interruptOnError) from the one of restWebhook/restCall/restAsync set."""
    given = [
        (name, value)
        for name, value in (
            (targets.WEBHOOK, req.rest_webhook),
            (targets.CALL, req.rest_call),
            (targets.ASYNC, req.rest_async),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise invalid("targetType", "set only one of restWebhook, restCall, restAsync")
    if not given:
        return None
    name, value = given[0]
    return name, bool(getattr(value, "interrupt_on_error", False))


def _payload_type(value: str | None) -> str | None:
    if value in (None, "", "PAYLOAD_TYPE_UNSPECIFIED"):
        return None
    if value == targets.PAYLOAD_JSON:
        return value
    if value in ("PAYLOAD_TYPE_JWT", "PAYLOAD_TYPE_JWE"):
        raise ConnectError(
            "unimplemented", f"payloadType: {value} is not supported; use PAYLOAD_TYPE_JSON"
        )
    raise invalid("payloadType", f"unknown payload type {value!r}")


def _name(value: str) -> str:
    try:
        return targets.check_name(value)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None


def _timeout(value: str | None, *, required: bool) -> float | None:
    seconds = parse_duration("timeout", value)
    if seconds is None:
        if required:
            raise invalid("timeout", 'is required (such as "10s")')
        return None
    try:
        return targets.check_timeout(seconds)
    except ValueError as exc:
        raise invalid("timeout", str(exc)) from None


async def _target_state(call: Call, target_id: str) -> targets.TargetState:
    if not target_id:
        raise invalid("id", "is required")
    state = await targets.TargetState.load(call.runtime.store, call.instance_id, target_id)
    if not state.exists:
        raise not_found("target")
    return state


def _keys(call: Call) -> Any:
    if call.runtime.keys is None:
        raise ConnectError("failed_precondition", "donjon runs without a master key")
    return call.runtime.keys


def target_json(row: Any, signing_key: str) -> dict[str, Any]:
    kind: dict[str, Any]
    if row.target_type == targets.WEBHOOK:
        kind = {"restWebhook": {"interruptOnError": row.interrupt_on_error}}
    elif row.target_type == targets.CALL:
        kind = {"restCall": {"interruptOnError": row.interrupt_on_error}}
    else:
        kind = {"restAsync": {}}
    return {
        "id": row.id,
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "name": row.name,
        "endpoint": row.endpoint,
        "timeout": duration(row.timeout),
        "signingKey": signing_key,
        "payloadType": row.payload_type,
        **kind,
    }


@service.rpc("CreateTarget", request=CreateTargetRequest)
async def create_target(call: Call, req: CreateTargetRequest) -> dict[str, Any]:
    """Create a target; the answer carries its signing key (GetTarget shows it again)."""
    await call.require(TARGET_WRITE)
    name = _name(req.name)
    endpoint = check_endpoint(call, req.endpoint)
    timeout = _timeout(req.timeout, required=True)
    kind = target_kind(req)
    if kind is None:
        raise invalid("targetType", "set one of restWebhook, restCall, restAsync")
    payload_type = _payload_type(req.payload_type) or targets.PAYLOAD_JSON
    signing_key = new_secret()
    target_id = ids.new_id()
    event = targets.TargetAdded(
        name=name,
        endpoint=endpoint,
        target_type=kind[0],
        timeout=timeout or 0.0,
        interrupt_on_error=kind[1],
        signing_key=await targets.seal_key(_keys(call), signing_key),
        payload_type=payload_type,
    )
    stored = await call.runtime.store.push(
        [targets.add_target(call.instance_id, target_id, event)], creator=call.user_id
    )
    return {
        "id": target_id,
        "creationDate": timestamp(stored[0].created_at),
        "signingKey": signing_key,
    }


@service.rpc("UpdateTarget", request=UpdateTargetRequest)
async def update_target(call: Call, req: UpdateTargetRequest) -> dict[str, Any]:
    """Change a target; `expirationSigningKey` rotates its key (the old one signs until then)."""
    await call.require(TARGET_WRITE)
    state = await _target_state(call, req.id)
    changes: dict[str, Any] = {}
    if req.name is not None:
        name = _name(req.name)
        if name != state.name:
            changes["name"], changes["old_name"] = name, state.name
    if req.endpoint is not None:
        endpoint = check_endpoint(call, req.endpoint)
        if endpoint != state.endpoint:
            changes["endpoint"] = endpoint
    timeout = _timeout(req.timeout, required=False)
    if timeout is not None and timeout != state.timeout:
        changes["timeout"] = timeout
    kind = target_kind(req)
    if kind is not None:
        if kind[0] != state.target_type:
            changes["target_type"] = kind[0]
        if kind[1] != state.interrupt_on_error:
            changes["interrupt_on_error"] = kind[1]
    payload_type = _payload_type(req.payload_type)
    if payload_type is not None and payload_type != state.payload_type:
        changes["payload_type"] = payload_type
    new_key: str | None = None
    expiration = parse_duration("expirationSigningKey", req.expiration_signing_key)
    if expiration is not None:
        new_key = new_secret()
        changes["signing_key"] = await targets.seal_key(_keys(call), new_key)
        changes["previous_signing_key"] = state.signing_key
        changes["previous_key_expires_at"] = (
            datetime.now(UTC) + timedelta(seconds=expiration)
        ).isoformat()
    out: dict[str, Any] = {}
    if changes:
        stored = await call.runtime.store.push(
            [targets.change_target(state, targets.TargetChanged(**changes))],
            creator=call.user_id,
        )
        out["changeDate"] = timestamp(stored[0].created_at)
    else:
        out["changeDate"] = timestamp(state.changed_at)
    if new_key is not None:
        out["signingKey"] = new_key
    return out


@service.rpc("DeleteTarget", request=TargetIDRequest)
async def delete_target(call: Call, req: TargetIDRequest) -> dict[str, Any]:
    """Delete a target; it leaves every execution that named it. Deleting twice is fine."""
    await call.require(TARGET_DELETE)
    if not req.id:
        raise invalid("id", "is required")
    state = await targets.TargetState.load(call.runtime.store, call.instance_id, req.id)
    if not state.exists:
        return {"deletionDate": timestamp(state.changed_at) if state.removed else None}
    stored = await call.runtime.store.push([targets.remove_target(state)], creator=call.user_id)
    return {"deletionDate": timestamp(stored[0].created_at)}


@service.rpc("GetTarget", request=TargetIDRequest)
async def get_target(call: Call, req: TargetIDRequest) -> dict[str, Any]:
    """A target with its signing key."""
    await call.require(TARGET_READ)
    if not req.id:
        raise invalid("id", "is required")
    t = targets.targets_table
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(t).where(t.c.instance_id == call.instance_id, t.c.id == req.id)
            )
        ).first()
    if row is None:
        raise not_found("target")
    key = await targets.open_key(_keys(call), row.signing_key)
    return {"target": target_json(row, key)}


@service.rpc("ListTargets", request=ListTargetsRequest)
async def list_targets(call: Call, req: ListTargetsRequest) -> dict[str, Any]:
    """The instance's targets, filtered by name or ids."""
    await call.require(TARGET_READ)
    offset, limit, ascending = paging(req.pagination, "pagination")
    t = targets.targets_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    for i, f in enumerate(req.filters):
        where = f"filters.{i}"
        if f.target_name_filter is not None:
            method = f.target_name_filter.method
            if method is not None and method not in TEXT_METHODS:
                raise invalid(f"{where}.targetNameFilter.method", f"unknown method {method!r}")
            legacy = (method or "TEXT_FILTER_METHOD_EQUALS").replace("_FILTER_", "_QUERY_")
            conditions.append(
                text_condition(
                    t.c.name, f.target_name_filter.target_name, legacy, f"{where}.targetNameFilter"
                )
            )
        elif f.in_target_ids_filter is not None:
            conditions.append(t.c.id.in_(f.in_target_ids_filter.target_ids))
        else:
            raise invalid(where, "set targetNameFilter or inTargetIdsFilter")
    column = _TARGET_SORT.get(req.sorting_column or "TARGET_FIELD_NAME_UNSPECIFIED")
    if column is None:
        raise invalid("sortingColumn", f"unknown column {req.sorting_column!r}")
    order = asc if ascending else desc
    async with call.runtime.db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(t).where(*conditions))
        ).scalar_one()
        rows = list(
            await conn.execute(
                select(t)
                .where(*conditions)
                .order_by(order(column), order(t.c.id))
                .offset(offset)
                .limit(limit)
            )
        )
    keys = _keys(call)
    return {
        "pagination": {"totalResult": str(total), "appliedLimit": str(limit)},
        "targets": [target_json(r, await targets.open_key(keys, r.signing_key)) for r in rows],
    }
