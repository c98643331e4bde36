"""Executions: a condition bound to an ordered list of targets, event-sourced per instance.

A condition is one of (ZITADEL's `Condition`):

- `event`: an event type (`user.human.added`), a group of them
  (`user.human`: every type that starts with `user.human.`), or `all`;
- `request` / `response`: a management API method
  (`/zitadel.user.v2.UserService/AddHumanUser`), a service
  (`zitadel.user.v2.UserService`), or `all`;
- `function`: a named function (`preaccesstoken`, `preuserinfo`,
  `presamlresponse`).

Each condition is one aggregate (`execution`), whose id is the condition in
ZITADEL's form: `event/user.human.added`, `event/user.human.*`, `event`,
`request/zitadel.user.v2.UserService/AddHumanUser`,
`request/zitadel.user.v2.UserService`, `request`, `function/preaccesstoken`.
SetExecution with targets sets it (`execution.set.v2`); with none it removes
it (`execution.removed`). An execution receives the events pushed after it
was set: the read model keeps the position of its `execution.set.v2`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Put, Remove, RemoveWhere

AGGREGATE = "execution"
EVENT, REQUEST, RESPONSE, FUNCTION = "event", "request", "response", "function"
EXECUTION_TYPES = (REQUEST, RESPONSE, EVENT, FUNCTION)
FUNCTIONS = ("preaccesstoken", "preuserinfo", "presamlresponse")
MAX_TARGETS = 20


@dataclass(frozen=True)
class Condition:
    """One condition: its kind and, unless it is `all`, a method, service, event, group or name."""

    kind: str  # event, request, response, function
    # For event: "event" | "group" | "all"; request/response: "method" | "service" | "all";
    # function: "name".
    scope: str
    value: str = ""

    @property
    def id(self) -> str:
        if self.scope == "all":
            return self.kind
        if self.scope == "group":
            return f"{self.kind}/{self.value}.*"
        return f"{self.kind}/{self.value.lstrip('/')}"

    def to_json(self) -> dict[str, Any]:
        """The condition as the API writes it (protobuf JSON)."""
        if self.scope == "all":
            inner: dict[str, Any] = {"all": True}
        elif self.kind in (REQUEST, RESPONSE) and self.scope == "method":
            inner = {"method": "/" + self.value.lstrip("/")}
        else:
            inner = {self.scope: self.value}
        return {self.kind: inner}

    @classmethod
    def from_id(cls, condition_id: str) -> Condition:
        kind, _, rest = condition_id.partition("/")
        if not rest:
            return cls(kind, "all")
        if kind == EVENT:
            if rest.endswith(".*"):
                return cls(kind, "group", rest[:-2])
            return cls(kind, "event", rest)
        if kind == FUNCTION:
            return cls(kind, "name", rest)
        if "/" in rest:
            return cls(kind, "method", "/" + rest)
        return cls(kind, "service", rest)


def event_condition_ids(event_type: str) -> list[str]:
    """The ids of the event conditions an event of this type meets, most specific first."""
    parts = event_type.split(".")
    groups = [f"{EVENT}/{'.'.join(parts[:i])}.*" for i in range(len(parts) - 1, 0, -1)]
    return [f"{EVENT}/{event_type}", *groups, EVENT]


def call_condition_ids(kind: str, path: str) -> list[str]:
    """The ids of the request (or response) conditions a call of `path` meets, most specific first.

    `path` is `/<service>/<method>`.
    """
    service = path.strip("/").split("/")[0]
    return [f"{kind}/{path.strip('/')}", f"{kind}/{service}", kind]


@dataclass(frozen=True)
class ExecutionSet(Event):
    TYPE = "execution.set.v2"
    AGGREGATE_TYPE = AGGREGATE
    targets: list[str]


@dataclass(frozen=True)
class ExecutionRemoved(Event):
    TYPE = "execution.removed"
    AGGREGATE_TYPE = AGGREGATE


EVENT_TYPES: list[type[Event]] = [ExecutionSet, ExecutionRemoved]

executions_table = Table(
    "actions_executions",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("execution_type", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    # The store position of the last `execution.set.v2`: events after it are delivered.
    Column("set_position", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
)

execution_targets_table = Table(
    "actions_execution_targets",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("execution_id", Text, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("target_id", Text, nullable=False, index=True),
)


class ExecutionsProjection(Projection):
    """`actions_executions` and their ordered targets; a removed target leaves every execution."""

    name = "actions_executions"
    version = 1
    inline = True
    tables = (executions_table, execution_targets_table)

    @handles(ExecutionSet.TYPE)
    def set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        key = {"instance_id": e.instance_id, "execution_id": e.aggregate_id}
        return [
            Put(
                executions_table,
                {
                    "instance_id": e.instance_id,
                    "id": e.aggregate_id,
                    "execution_type": e.aggregate_id.split("/")[0],
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "set_position": e.position,
                    "sequence": e.sequence,
                },
            ),
            RemoveWhere(execution_targets_table, key),
            *(
                Put(execution_targets_table, {**key, "position": i, "target_id": t})
                for i, t in enumerate(e.payload["targets"])
            ),
        ]

    @handles(ExecutionRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(executions_table, {"instance_id": e.instance_id, "id": e.aggregate_id}),
            RemoveWhere(
                execution_targets_table,
                {"instance_id": e.instance_id, "execution_id": e.aggregate_id},
            ),
        ]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        where = {"instance_id": e.instance_id}
        return [RemoveWhere(executions_table, where), RemoveWhere(execution_targets_table, where)]

    @handles("target.removed")
    def target_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                execution_targets_table,
                {"instance_id": e.instance_id, "target_id": e.aggregate_id},
            )
        ]


class ExecutionState(WriteModel):
    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.targets: list[str] = []

    @property
    def exists(self) -> bool:
        return bool(self.targets)

    @applies(ExecutionSet.TYPE)
    def set(self, e: StoredEvent) -> None:
        self.targets = list(e.payload["targets"])

    @applies(ExecutionRemoved.TYPE)
    def remove(self, e: StoredEvent) -> None:
        self.targets = []


def set_execution(state: ExecutionState, targets: list[str]) -> AggregateChanges:
    event: Event = ExecutionSet(targets=targets) if targets else ExecutionRemoved()
    return AggregateChanges(
        Aggregate(AGGREGATE, state.id, state.instance_id, state.instance_id),
        [event],
        expected_sequence=state.sequence,
    )


# -- reads --------------------------------------------------------------------------------


async def targets_for(
    conn: AsyncConnection,
    instance_id: str,
    condition_ids: Iterable[str],
    *,
    after_position: int | None = None,
) -> list[str]:
    """The target ids bound to these conditions, most specific condition first, each once.

    With `after_position`, only executions set before that position count
    (an event is delivered to the executions that existed when it was pushed).
    """
    ids = list(condition_ids)
    query = (
        select(
            executions_table.c.id,
            executions_table.c.set_position,
            execution_targets_table.c.target_id,
        )
        .join(
            execution_targets_table,
            (execution_targets_table.c.instance_id == executions_table.c.instance_id)
            & (execution_targets_table.c.execution_id == executions_table.c.id),
        )
        .where(executions_table.c.instance_id == instance_id, executions_table.c.id.in_(ids))
        .order_by(execution_targets_table.c.position)
    )
    if after_position is not None:
        query = query.where(executions_table.c.set_position < after_position)
    rows = list(await conn.execute(query))
    rank = {cid: i for i, cid in enumerate(ids)}
    rows.sort(key=lambda r: rank[r.id])
    out: list[str] = []
    for r in rows:
        if r.target_id not in out:
            out.append(r.target_id)
    return out


def condition_json(execution_id: str) -> dict[str, Any]:
    return Condition.from_id(execution_id).to_json()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
