"""zitadel.action.v2.ActionService: targets and executions over Connect JSON.

Targets and executions belong to the instance: reading them needs
`action.target.read` / `action.execution.read`, changing them
`action.target.write`, `action.target.delete`, `action.execution.write`,
held through an instance membership (IAM_OWNER has all of them).

The delivery methods (`ListEventDeliveries`, `RetryEventDelivery`) are
donjon's extension: ZITADEL has no API to see or re-drive a parked delivery.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import asc, desc, func, select

from donjon.actions import executions, outbox, ssrf, targets
from donjon.actions.executions import Condition
from donjon.core import ids
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
    not_found,
    timestamp,
)
from donjon.core.api.queries import PaginationRequest, paging, text_condition
from donjon.core.identity.secrets import new_secret
from donjon.core.plugins import collect

service = Service("zitadel.action.v2.ActionService")

TARGET_READ, TARGET_WRITE, TARGET_DELETE = (
    "action.target.read",
    "action.target.write",
    "action.target.delete",
)
EXECUTION_READ, EXECUTION_WRITE = "action.execution.read", "action.execution.write"

_DURATION = re.compile(r"^(\d+(?:\.\d{1,9})?)s$")
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
_EXECUTION_SORT = {
    "EXECUTION_FIELD_NAME_UNSPECIFIED": executions.executions_table.c.id,
    "EXECUTION_FIELD_NAME_ID": executions.executions_table.c.id,
    "EXECUTION_FIELD_NAME_CREATED_DATE": executions.executions_table.c.created_at,
    "EXECUTION_FIELD_NAME_CHANGED_DATE": executions.executions_table.c.changed_at,
}
_EXECUTION_TYPES = {
    "EXECUTION_TYPE_REQUEST": executions.REQUEST,
    "EXECUTION_TYPE_RESPONSE": executions.RESPONSE,
    "EXECUTION_TYPE_EVENT": executions.EVENT,
    "EXECUTION_TYPE_FUNCTION": executions.FUNCTION,
}
_TEXT_METHODS = (
    "TEXT_FILTER_METHOD_EQUALS",
    "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_STARTS_WITH",
    "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
    "TEXT_FILTER_METHOD_CONTAINS",
    "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_ENDS_WITH",
    "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE",
)


# -- messages ---------------------------------------------------------------------------


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


class CallCondition(Message):
    method: str | None = None
    service: str | None = None
    all: bool | None = None


class EventCondition(Message):
    event: str | None = None
    group: str | None = None
    all: bool | None = None


class FunctionCondition(Message):
    name: str = ""


class ConditionMessage(Message):
    request: CallCondition | None = None
    response: CallCondition | None = None
    event: EventCondition | None = None
    function: FunctionCondition | None = None


class SetExecutionRequest(Message):
    condition: ConditionMessage | None = None
    targets: list[str] = []


class InConditionsFilter(Message):
    conditions: list[ConditionMessage] = []


class ExecutionTypeFilter(Message):
    execution_type: str = ""


class TargetFilter(Message):
    target_id: str = ""


class ExecutionSearchFilter(Message):
    in_conditions_filter: InConditionsFilter | None = None
    execution_type_filter: ExecutionTypeFilter | None = None
    target_filter: TargetFilter | None = None


class ListExecutionsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[ExecutionSearchFilter] = []


class Empty(Message):
    pass


# -- helpers ------------------------------------------------------------------------------


def parse_duration(field_name: str, value: str | None) -> float | None:
    """A protobuf JSON Duration ("10s", "0.5s") in seconds; None when absent."""
    if value is None or value == "":
        return None
    match = _DURATION.match(value.strip())
    if not match:
        raise invalid(field_name, f'expected a duration such as "10s", got {value!r}')
    return float(match.group(1))


def duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


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


# -- targets ------------------------------------------------------------------------------


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
            if method is not None and method not in _TEXT_METHODS:
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


# -- executions ---------------------------------------------------------------------------


def api_methods(call: Call) -> list[str]:
    """Every management API method served, as `/<service>/<method>`."""
    services = collect(call.runtime.pm.hook.register_api_services, settings=call.runtime.settings)
    return sorted(rpc.path for s in services for rpc in s.rpcs.values())


def condition_of(call: Call, message: ConditionMessage | None, field_name: str) -> Condition:
    """The condition a request names, checked against what exists (methods, event types)."""
    if message is None:
        raise invalid(field_name, "is required")
    given = [
        (kind, value)
        for kind, value in (
            (executions.REQUEST, message.request),
            (executions.RESPONSE, message.response),
            (executions.EVENT, message.event),
            (executions.FUNCTION, message.function),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise invalid(field_name, "set exactly one of request, response, event, function")
    kind, value = given[0]
    where = f"{field_name}.{kind}"
    if isinstance(value, FunctionCondition):
        if value.name not in executions.FUNCTIONS:
            raise invalid(
                f"{where}.name",
                f"unknown function {value.name!r} (known: {', '.join(executions.FUNCTIONS)})",
            )
        return Condition(kind, "name", value.name)
    if isinstance(value, EventCondition):
        chosen = [x for x in (value.event, value.group) if x] + (["all"] if value.all else [])
        if len(chosen) != 1:
            raise invalid(where, "set exactly one of event, group, all")
        types = list(call.runtime.registry.types)
        if value.event:
            if value.event not in call.runtime.registry:
                raise invalid(f"{where}.event", f"unknown event type {value.event!r}")
            return Condition(kind, "event", value.event)
        if value.group:
            group = value.group.strip().removesuffix(".*").removesuffix(".")
            if not any(t.startswith(group + ".") for t in types):
                raise invalid(f"{where}.group", f"no event type starts with {group + '.'!r}")
            return Condition(kind, "group", group)
        return Condition(kind, "all")
    assert isinstance(value, CallCondition)
    chosen = [x for x in (value.method, value.service) if x] + (["all"] if value.all else [])
    if len(chosen) != 1:
        raise invalid(where, "set exactly one of method, service, all")
    methods = api_methods(call)
    if value.method:
        method = "/" + value.method.strip().lstrip("/")
        if method not in methods:
            raise invalid(f"{where}.method", f"unknown method {value.method!r}")
        return Condition(kind, "method", method)
    if value.service:
        service_name = value.service.strip().strip("/")
        if not any(m.startswith(f"/{service_name}/") for m in methods):
            raise invalid(f"{where}.service", f"unknown service {value.service!r}")
        return Condition(kind, "service", service_name)
    return Condition(kind, "all")


@service.rpc("SetExecution", request=SetExecutionRequest)
async def set_execution(call: Call, req: SetExecutionRequest) -> dict[str, Any]:
    """Bind a condition to targets, in order; no targets removes the execution."""
    await call.require(EXECUTION_WRITE)
    condition = condition_of(call, req.condition, "condition")
    wanted: list[str] = []
    for i, target_id in enumerate(req.targets):
        if not target_id:
            raise invalid(f"targets.{i}", "must not be empty")
        if target_id in wanted:
            raise invalid(f"targets.{i}", f"target {target_id} is listed twice")
        wanted.append(target_id)
    if len(wanted) > executions.MAX_TARGETS:
        raise invalid("targets", f"at most {executions.MAX_TARGETS} targets")
    if wanted:
        async with call.runtime.db.read() as conn:
            known = await targets.targets_by_id(conn, call.instance_id, wanted)
        for i, target_id in enumerate(wanted):
            if target_id not in known:
                raise ConnectError("not_found", f"targets.{i}: target {target_id} not found")
    state = await executions.ExecutionState.load(call.runtime.store, call.instance_id, condition.id)
    if state.targets == wanted:
        return {"setDate": timestamp(state.changed_at or datetime.now(UTC))}
    stored = await call.runtime.store.push(
        [executions.set_execution(state, wanted)], creator=call.user_id
    )
    return {"setDate": timestamp(stored[0].created_at)}


@service.rpc("ListExecutions", request=ListExecutionsRequest)
async def list_executions(call: Call, req: ListExecutionsRequest) -> dict[str, Any]:
    """The instance's executions, filtered by condition, type or target."""
    await call.require(EXECUTION_READ)
    offset, limit, ascending = paging(req.pagination, "pagination")
    e, et = executions.executions_table, executions.execution_targets_table
    conditions: list[Any] = [e.c.instance_id == call.instance_id]
    for i, f in enumerate(req.filters):
        where = f"filters.{i}"
        if f.in_conditions_filter is not None:
            wanted = [
                condition_of(call, c, f"{where}.inConditionsFilter.conditions.{j}").id
                for j, c in enumerate(f.in_conditions_filter.conditions)
            ]
            conditions.append(e.c.id.in_(wanted))
        elif f.execution_type_filter is not None:
            kind = _EXECUTION_TYPES.get(f.execution_type_filter.execution_type)
            if kind is None:
                raise invalid(
                    f"{where}.executionTypeFilter.executionType",
                    f"unknown type {f.execution_type_filter.execution_type!r}",
                )
            conditions.append(e.c.execution_type == kind)
        elif f.target_filter is not None:
            conditions.append(
                e.c.id.in_(
                    select(et.c.execution_id).where(
                        et.c.instance_id == call.instance_id,
                        et.c.target_id == f.target_filter.target_id,
                    )
                )
            )
        else:
            raise invalid(where, "set inConditionsFilter, executionTypeFilter or targetFilter")
    column = _EXECUTION_SORT.get(req.sorting_column or "EXECUTION_FIELD_NAME_UNSPECIFIED")
    if column is None:
        raise invalid("sortingColumn", f"unknown column {req.sorting_column!r}")
    order = asc if ascending else desc
    async with call.runtime.db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(e).where(*conditions))
        ).scalar_one()
        rows = list(
            await conn.execute(
                select(e)
                .where(*conditions)
                .order_by(order(column), order(e.c.id))
                .offset(offset)
                .limit(limit)
            )
        )
        bound: dict[str, list[str]] = {r.id: [] for r in rows}
        if rows:
            for t in await conn.execute(
                select(et.c.execution_id, et.c.target_id)
                .where(et.c.instance_id == call.instance_id, et.c.execution_id.in_(list(bound)))
                .order_by(et.c.position)
            ):
                bound[t.execution_id].append(t.target_id)
    return {
        "pagination": {"totalResult": str(total), "appliedLimit": str(limit)},
        "executions": [
            {
                "condition": executions.condition_json(r.id),
                "targets": bound[r.id],
                "creationDate": timestamp(r.created_at),
                "changeDate": timestamp(r.changed_at),
            }
            for r in rows
        ],
    }


@service.rpc("ListExecutionFunctions", request=Empty)
async def list_execution_functions(call: Call, req: Empty) -> dict[str, Any]:
    """The function names a `function` condition may name."""
    await call.require(EXECUTION_READ)
    return {"functions": list(executions.FUNCTIONS)}


@service.rpc("ListExecutionMethods", request=Empty)
async def list_execution_methods(call: Call, req: Empty) -> dict[str, Any]:
    """The management API methods a `request` or `response` condition may name."""
    await call.require(EXECUTION_READ)
    return {"methods": api_methods(call)}


@service.rpc("ListExecutionServices", request=Empty)
async def list_execution_services(call: Call, req: Empty) -> dict[str, Any]:
    """The management API services a `request` or `response` condition may name."""
    await call.require(EXECUTION_READ)
    return {"services": sorted({m.strip("/").split("/")[0] for m in api_methods(call)})}


# -- deliveries (donjon's extension) ------------------------------------------------------

_DELIVERY_STATES = {
    "EVENT_DELIVERY_STATE_PENDING": outbox.PENDING,
    "EVENT_DELIVERY_STATE_PARKED": outbox.PARKED,
}


class ListEventDeliveriesRequest(Message):
    pagination: PaginationRequest | None = None
    target_id: str = ""
    state: str | None = None


class RedriveEventDeliveriesRequest(Message):
    delivery_ids: list[str] = []
    target_id: str = ""


def delivery_json(row: Any) -> dict[str, Any]:
    state = next(k for k, v in _DELIVERY_STATES.items() if v == row.status)
    return {
        "id": str(row.id),
        "targetId": row.target_id,
        "eventId": str(row.event_position),
        "eventType": row.event_type,
        "aggregateType": row.aggregate_type,
        "aggregateId": row.aggregate_id,
        "state": state,
        "attempts": row.attempts,
        "nextAttemptDate": timestamp(row.next_attempt_at) if row.status == outbox.PENDING else None,
        "lastError": row.last_error or "",
        "lastStatus": row.last_status or 0,
        "creationDate": timestamp(row.created_at),
    }


@service.rpc("ListEventDeliveries", request=ListEventDeliveriesRequest)
async def list_event_deliveries(call: Call, req: ListEventDeliveriesRequest) -> dict[str, Any]:
    """donjon's extension: the event deliveries not made yet, pending or parked, with
    their attempts and last error (a delivered event leaves the list)."""
    await call.require(EXECUTION_READ)
    offset, limit, ascending = paging(req.pagination, "pagination")
    d = outbox.deliveries_table
    conditions: list[Any] = [d.c.instance_id == call.instance_id]
    if req.target_id:
        conditions.append(d.c.target_id == req.target_id)
    if req.state not in (None, "", "EVENT_DELIVERY_STATE_UNSPECIFIED"):
        status = _DELIVERY_STATES.get(req.state)
        if status is None:
            raise invalid("state", f"unknown state {req.state!r}")
        conditions.append(d.c.status == status)
    order = asc if ascending else desc
    async with call.runtime.db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(d).where(*conditions))
        ).scalar_one()
        rows = list(
            await conn.execute(
                select(d).where(*conditions).order_by(order(d.c.id)).offset(offset).limit(limit)
            )
        )
    return {
        "pagination": {"totalResult": str(total), "appliedLimit": str(limit)},
        "deliveries": [delivery_json(r) for r in rows],
    }


@service.rpc("RedriveEventDeliveries", request=RedriveEventDeliveriesRequest)
async def redrive_event_deliveries(
    call: Call, req: RedriveEventDeliveriesRequest
) -> dict[str, Any]:
    """donjon's extension: queue parked deliveries again (these ids, or all of a target's),
    their attempts reset. A redriven event may reach its target after later events of
    the same aggregate."""
    await call.require(EXECUTION_WRITE)
    if not req.delivery_ids and not req.target_id:
        raise invalid("deliveryIds", "name deliveries, or a targetId to redrive all of its own")
    ids_: list[int] = []
    for i, value in enumerate(req.delivery_ids):
        try:
            ids_.append(int(value))
        except ValueError:
            raise invalid(f"deliveryIds.{i}", f"not a delivery id: {value!r}") from None
    async with call.runtime.db.write() as conn:
        count = await outbox.redrive(
            conn, call.instance_id, delivery_ids=ids_, target_id=req.target_id
        )
    from donjon.actions.worker import worker_of

    worker = worker_of(call.runtime)
    if worker is not None:
        worker.outbox.wake_deliver()
    return {"redriven": str(count)}
