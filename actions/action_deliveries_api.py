"""ActionService deliveries, donjon's extension: ListEventDeliveries and
RedriveEventDeliveries (see `action_service`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import asc, desc, func, select

from donjon.actions import outbox
from donjon.actions.action_service_shared import (
    EXECUTION_READ,
    EXECUTION_WRITE,
    service,
)
from donjon.core.api.connect import (
    Call,
    Message,
    invalid,
    timestamp,
)
from donjon.core.api.queries import PaginationRequest, paging

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
