"""ActionService executions: SetExecution, ListExecutions and the lists of what
can be a condition (see `action_service`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import asc, desc, func, select

from donjon.actions import executions, targets
from donjon.actions.action_service_shared import (
    EXECUTION_READ,
    EXECUTION_WRITE,
    service,
)
from donjon.actions.executions import Condition
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    invalid,
    timestamp,
)
from donjon.core.api.queries import PaginationRequest, paging
from donjon.core.plugins import collect

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
