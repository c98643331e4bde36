"""The audit trail: ZITADEL's event search (`zitadel.admin.v1.AdminService/ListEvents`).

Served in Connect JSON form like the v2 services, with v1's messages:
`ListEvents` searches the events of the call's instance (every change in
donjon is one), `ListEventTypes` and `ListAggregateTypes` name what can be
searched for.

Paging is by position (a keyset): each event's `sequence` is its position in
the store, and a request's `sequence` continues after it (ascending) or
before it (descending, the default: newest first). Permission `events.read`:
an instance-level role sees every event of the instance; an org role (ORG_OWNER
and its viewer) only the events whose resource owner is that org.

Payloads are shown as stored, except secrets: any key naming a hash, a
digest, a secret or a private key has its value replaced by `[redacted]`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    int64,
    invalid,
    parse_timestamp,
    timestamp,
)
from donjon.core.api.queries import DEFAULT_LIMIT, MAX_LIMIT
from donjon.core.events import StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.identity.users import users_table

service = Service("zitadel.admin.v1.AdminService")

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {"password_hash", "digest", "secret_digest", "code_digest", "secret", "private_key"}
)
SECRET_SUFFIXES = ("_digest", "_hash", "_secret", "_private_key", "_encrypted")
SYSTEM_EDITORS = {"SYSTEM": "System", "": "System"}

# Creation dates are stored to the microsecond: one is the step that turns the
# store's strict comparisons into the inclusive ones a range asks for.
TICK = timedelta(microseconds=1)


# -- messages ---------------------------------------------------------------------------


class CreationDateRange(Message):
    since: str | None = None
    until: str | None = None


class ListEventsRequest(Message):
    sequence: str | int | None = None
    limit: int | None = None
    asc: bool = False
    editor_user_id: str = ""
    event_types: list[str] = []
    aggregate_id: str = ""
    aggregate_types: list[str] = []
    resource_owner: str = ""
    creation_date: str | None = None
    range: CreationDateRange | None = None


class EmptyRequest(Message):
    pass


class LocalizedMessage(Message):
    key: str = ""
    localized_message: str = ""


class EventType(Message):
    type: str = ""
    localized: LocalizedMessage | None = None


class AggregateType(Message):
    type: str = ""
    localized: LocalizedMessage | None = None


class Editor(Message):
    user_id: str = ""
    display_name: str = ""
    service: str = ""


class EventAggregate(Message):
    id: str = ""
    type: AggregateType | None = None
    resource_owner: str = ""


class AuditEvent(Message):
    editor: Editor | None = None
    aggregate: EventAggregate | None = None
    sequence: str = "0"
    creation_date: str | None = None
    payload: dict[str, Any] = {}
    type: EventType | None = None


class ListEventsResponse(Message):
    events: list[AuditEvent] = []


class ListEventTypesResponse(Message):
    event_types: list[EventType] = []


class ListAggregateTypesResponse(Message):
    aggregate_types: list[AggregateType] = []


# -- helpers ----------------------------------------------------------------------------


def is_secret(key: str) -> bool:
    key = key.lower()
    return key in SECRET_KEYS or key.endswith(SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    """`value` with the value of every secret-naming key replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _readable(name: str) -> str:
    words = name.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def event_type(name: str) -> dict[str, Any]:
    return {
        "type": name,
        "localized": {"key": f"EventTypes.{name}", "localizedMessage": _readable(name)},
    }


def aggregate_type(name: str) -> dict[str, Any]:
    return {
        "type": name,
        "localized": {"key": f"AggregateTypes.{name}", "localizedMessage": _readable(name)},
    }


async def readable_orgs(call: Call) -> set[str] | None:
    """The orgs whose events the caller may read; None: the whole instance."""
    visible = await call.visible_orgs("events.read")
    if visible is not None and not visible:
        raise ConnectError(
            "permission_denied", "missing permission events.read (Errors.AuthZ.NoPermission)"
        )
    return visible


def event_query(call: Call, req: ListEventsRequest, owners: tuple[str, ...]) -> EventQuery:
    """The store query of a request; invalid_argument naming the field at fault."""
    after = int64("sequence", req.sequence)
    limit = req.limit or DEFAULT_LIMIT
    if limit < 0:
        raise invalid("limit", "must not be negative")
    if limit > MAX_LIMIT:
        raise invalid("limit", f"must be at most {MAX_LIMIT}")
    created_after = created_before = None
    if req.creation_date and req.range is not None:
        raise invalid("range", "set creationDate or range, not both")
    if req.creation_date:
        at = parse_timestamp("creationDate", req.creation_date)
        assert at is not None
        # As ZITADEL: from that time on when ascending, up to it when descending.
        if req.asc:
            created_after = at - TICK
        else:
            created_before = at + TICK
    elif req.range is not None:
        since = parse_timestamp("range.since", req.range.since)
        until = parse_timestamp("range.until", req.range.until)
        if since is not None and until is not None and until < since:
            raise invalid("range.until", "must not be before range.since")
        created_after = since - TICK if since is not None else None
        created_before = until + TICK if until is not None else None
    for i, name in enumerate(req.event_types):
        if not name.strip():
            raise invalid(f"eventTypes.{i}", "must not be empty")
    for i, name in enumerate(req.aggregate_types):
        if not name.strip():
            raise invalid(f"aggregateTypes.{i}", "must not be empty")
    return EventQuery(
        instance_ids=(call.instance_id,),
        aggregate_types=tuple(req.aggregate_types),
        aggregate_ids=(req.aggregate_id,) if req.aggregate_id else (),
        event_types=tuple(req.event_types),
        owners=owners,
        creators=(req.editor_user_id,) if req.editor_user_id else (),
        position_after=after if req.asc and after else None,
        position_at_most=after - 1 if not req.asc and after else None,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        descending=not req.asc,
    )


async def editor_names(call: Call, user_ids: set[str]) -> dict[str, str]:
    """Display names of the editors of a page (their user name when they have none)."""
    ids = [u for u in user_ids if u not in SYSTEM_EDITORS]
    names = {u: SYSTEM_EDITORS[u] for u in user_ids if u in SYSTEM_EDITORS}
    if not ids:
        return names
    t = users_table
    async with call.runtime.db.read() as conn:
        rows = await conn.execute(
            select(t.c.id, t.c.display_name, t.c.name, t.c.username).where(
                t.c.instance_id == call.instance_id, t.c.id.in_(ids)
            )
        )
        for r in rows:
            names[r.id] = r.display_name or r.name or r.username
    return names


def audit_event(e: StoredEvent, names: dict[str, str]) -> dict[str, Any]:
    return {
        "editor": {"userId": e.creator, "displayName": names.get(e.creator, ""), "service": ""},
        "aggregate": {
            "id": e.aggregate_id,
            "type": aggregate_type(e.aggregate_type),
            "resourceOwner": e.owner,
        },
        "sequence": str(e.position),
        "creationDate": timestamp(e.created_at),
        "payload": redact(e.payload),
        "type": event_type(e.type),
    }


# -- methods ----------------------------------------------------------------------------


@service.rpc("ListEvents", request=ListEventsRequest, response=ListEventsResponse)
async def list_events(call: Call, req: ListEventsRequest) -> dict[str, Any]:
    """Search the instance's events (the audit trail), newest first unless `asc`."""
    visible = await readable_orgs(call)
    owners: tuple[str, ...] = (req.resource_owner,) if req.resource_owner else ()
    query = event_query(call, req, owners)
    if visible is not None:
        owners = tuple(o for o in owners if o in visible) if owners else tuple(sorted(visible))
        if not owners:
            return {"events": []}  # asked for an org the caller may not read
        query = replace(query, owners=owners)
    found = await call.runtime.store.query(query)
    names = await editor_names(call, {e.creator for e in found})
    return {"events": [audit_event(e, names) for e in found]}


@service.rpc("ListEventTypes", request=EmptyRequest, response=ListEventTypesResponse)
async def list_event_types(call: Call, req: EmptyRequest) -> dict[str, Any]:
    """Every event type this donjon knows, for the `eventTypes` of ListEvents."""
    await readable_orgs(call)
    names = sorted(call.runtime.registry.types)
    return {"eventTypes": [event_type(n) for n in names]}


@service.rpc("ListAggregateTypes", request=EmptyRequest, response=ListAggregateTypesResponse)
async def list_aggregate_types(call: Call, req: EmptyRequest) -> dict[str, Any]:
    """Every aggregate type this donjon knows, for the `aggregateTypes` of ListEvents."""
    await readable_orgs(call)
    names = sorted({cls.AGGREGATE_TYPE for cls in call.runtime.registry.types.values()})
    return {"aggregateTypes": [aggregate_type(n) for n in names]}
