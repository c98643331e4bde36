"""Durable event executions: an outbox filled from the event store, delivered at least once.

Two loops run in every `donjon start` process:

1. **Enqueue.** The outbox cursor (one row, `actions_outbox_cursor`) is a
   store position. A transaction locks it (PostgreSQL: FOR UPDATE SKIP
   LOCKED; SQLite: the write lock), reads the events after it, writes one
   `actions_deliveries` row per event and bound target, and moves the cursor,
   all committed together: a crash at any point loses nothing and queues
   nothing twice. An event goes to the targets of the executions set before
   it was pushed (its exact type, its groups, `all`; each target once).
2. **Deliver.** A transaction claims due deliveries by giving them a lease
   (the target's timeout plus `Actions.LeaseMargin`), never one whose
   aggregate has an earlier delivery pending for the same target, so each
   target sees an aggregate's events in order. The POSTs run outside any
   transaction; the result is recorded after. A 2xx answer deletes the row.
   A failure schedules the next attempt with exponential backoff; after
   `Actions.MaxAttempts` attempts the delivery is parked (kept with its last
   error, re-drivable through the ActionService), and the aggregate's later
   events go on. A process that dies mid-delivery leaves its lease to expire;
   another process (or the restarted one) then delivers again: at least once.

With several processes on one PostgreSQL, claims lock rows with SKIP LOCKED
and a lease is committed before the request is made, so each attempt is made
by one process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.actions import executions, targets
from donjon.actions.outbound import TargetClient, TargetError, event_id
from donjon.core.database import Database
from donjon.core.events import StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.eventstore.store import EventStore
from donjon.core.settings import ActionsSettings

log = logging.getLogger(__name__)

PENDING, PARKED = "pending", "parked"
CURSOR = "events"

# The outbox is not a projection: a rebuild must never queue old events again.
actions_metadata = MetaData()

cursor_table = Table(
    "actions_outbox_cursor",
    actions_metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

deliveries_table = Table(
    "actions_deliveries",
    actions_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", Text, nullable=False),
    Column("target_id", Text, nullable=False),
    Column("event_position", BigInteger, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    # The JSON body, fixed when queued so every attempt sends the same bytes' content.
    Column("body", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    # A random token per claim: only the claim's holder records its result.
    Column("claim", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("instance_id", "target_id", "event_position"),
    Index("actions_deliveries_due", "status", "next_attempt_at"),
    Index(
        "actions_deliveries_stream",
        "instance_id",
        "target_id",
        "aggregate_type",
        "aggregate_id",
        "event_position",
    ),
)


async def create_tables(db: Database) -> None:
    async with db.write() as conn:
        await conn.run_sync(actions_metadata.create_all)
        found = (
            await conn.execute(select(cursor_table.c.name).where(cursor_table.c.name == CURSOR))
        ).first()
        if found is None:
            await conn.execute(insert(cursor_table).values(name=CURSOR, position=0))


def event_body(event: StoredEvent) -> dict[str, Any]:
    """What a target receives for an event (ZITADEL's event execution fields, and `eventId`)."""
    return {
        "eventId": event_id(event.position),
        "aggregateID": event.aggregate_id,
        "aggregateType": event.aggregate_type,
        "resourceOwner": event.owner,
        "instanceID": event.instance_id,
        "version": f"v{event.revision}",
        "sequence": event.sequence,
        "position": event.position,
        "event_type": event.type,
        "created_at": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "userID": event.creator,
        "event_payload": event.payload,
    }


def backoff(settings: ActionsSettings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling, capped, with 10% jitter."""
    first = settings.RetryFirstAfter.total_seconds()
    cap = settings.RetryMaxDelay.total_seconds()
    delay = min(cap, first * (2 ** max(attempts - 1, 0)))
    return timedelta(seconds=delay * (1 + random.random() * 0.1))


@dataclass(frozen=True)
class Claimed:
    id: int
    claim: str
    attempts: int
    body: str
    target: targets.Target | None


class Outbox:
    """The enqueue and deliver loops of one process."""

    def __init__(
        self, db: Database, store: EventStore, settings: ActionsSettings, client: TargetClient
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.client = client
        self._wake_enqueue = asyncio.Event()
        self._wake_deliver = asyncio.Event()

    def notify(self, events: list[StoredEvent]) -> None:
        """Wake the enqueue loop: this process has just pushed events."""
        if events:
            self._wake_enqueue.set()

    def wake_deliver(self) -> None:
        self._wake_deliver.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._loop(self.enqueue, self._wake_enqueue), name="actions enqueue")
            group.create_task(self._loop(self.deliver, self._wake_deliver), name="actions deliver")

    async def _loop(self, step: Any, wake: asyncio.Event) -> None:
        every = self.settings.RequeueEvery.total_seconds()
        last_error = ""
        while True:
            wake.clear()
            try:
                more = await step()
                last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The same failure again (a database that is down) is logged once.
                if str(exc) != last_error:
                    log.exception("actions: %s failed; trying again", step.__name__)
                last_error = str(exc)
                more = False
            if more:
                continue
            try:
                await asyncio.wait_for(wake.wait(), timeout=every)
            except TimeoutError:
                pass

    # -- enqueue --------------------------------------------------------------------------

    async def enqueue(self) -> bool:
        """Queue the deliveries of one batch of events; True when more events wait."""
        limit = self.settings.BatchSize
        queued = 0
        # Every push of this process wakes this loop: without any event execution
        # there is nothing to queue, and that is found without a write transaction
        # (the cursor may stay behind: a new execution only takes events after it).
        async with self.db.read() as conn:
            if await self._first_event_execution(conn) is None:
                return False
        async with self.db.write() as conn:
            stmt = select(cursor_table.c.position).where(cursor_table.c.name == CURSOR)
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            position = (await conn.execute(stmt)).scalar()
            if position is None:
                return False  # another process holds the cursor
            head = await self.store.max_position(conn)
            if head <= position:
                return False
            first_set = await self._first_event_execution(conn)
            if first_set is None or first_set >= head:
                # No event execution could take any of these events.
                await self._move(conn, head)
                return False
            position = max(position, first_set)
            batch = await self.store.query(
                EventQuery(position_after=position, position_at_most=head, limit=limit),
                conn=conn,
            )
            for event in batch:
                queued += await self._queue(conn, event)
            last = batch[-1].position if len(batch) == limit else head
            await self._move(conn, last)
        if queued:
            self._wake_deliver.set()
        return len(batch) == limit

    @staticmethod
    async def _first_event_execution(conn: AsyncConnection) -> int | None:
        """The position at which the earliest event execution was set; None without any."""
        ex = executions.executions_table
        return (
            await conn.execute(
                select(func.min(ex.c.set_position)).where(ex.c.execution_type == executions.EVENT)
            )
        ).scalar()

    async def _move(self, conn: AsyncConnection, position: int) -> None:
        await conn.execute(
            update(cursor_table).where(cursor_table.c.name == CURSOR).values(position=position)
        )

    async def _queue(self, conn: AsyncConnection, event: StoredEvent) -> int:
        target_ids = await executions.targets_for(
            conn,
            event.instance_id,
            executions.event_condition_ids(event.type),
            after_position=event.position,
        )
        if not target_ids:
            return 0
        body = json.dumps(event_body(event), separators=(",", ":"), default=str)
        now = datetime.now(UTC)
        await conn.execute(
            insert(deliveries_table),
            [
                {
                    "instance_id": event.instance_id,
                    "target_id": target_id,
                    "event_position": event.position,
                    "aggregate_type": event.aggregate_type,
                    "aggregate_id": event.aggregate_id,
                    "event_type": event.type,
                    "body": body,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for target_id in target_ids
            ],
        )
        return len(target_ids)

    # -- deliver --------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to `limit` due deliveries, each the first pending one of its stream."""
        d = deliveries_table.alias("d")
        earlier = deliveries_table.alias("earlier")
        now = datetime.now(UTC)
        blocked = exists().where(
            earlier.c.instance_id == d.c.instance_id,
            earlier.c.target_id == d.c.target_id,
            earlier.c.aggregate_type == d.c.aggregate_type,
            earlier.c.aggregate_id == d.c.aggregate_id,
            earlier.c.status == PENDING,
            earlier.c.event_position < d.c.event_position,
        )
        stmt = (
            select(d.c.id, d.c.instance_id, d.c.target_id, d.c.attempts, d.c.body)
            .where(
                d.c.status == PENDING,
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                ~blocked,
            )
            .order_by(d.c.event_position)
            .limit(limit)
        )
        out: list[Claimed] = []
        async with self.db.write() as conn:
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(of=d, skip_locked=True)
            rows = list(await conn.execute(stmt))
            found: dict[tuple[str, str], targets.Target] = {}
            for instance_id in {r.instance_id for r in rows}:
                ids = [r.target_id for r in rows if r.instance_id == instance_id]
                for target in (await targets.targets_by_id(conn, instance_id, ids)).values():
                    found[(instance_id, target.id)] = target
            margin = self.settings.LeaseMargin
            # One token per claim: a delivery's result is recorded by id and token.
            token = secrets.token_hex(8)
            by_lease: dict[datetime, list[int]] = {}
            for r in rows:
                target = found.get((r.instance_id, r.target_id))
                lease = now + timedelta(seconds=target.timeout if target else 0) + margin
                by_lease.setdefault(lease, []).append(r.id)
                out.append(Claimed(r.id, token, r.attempts, r.body, target))
            for lease, claimed_ids in by_lease.items():
                await conn.execute(
                    update(deliveries_table)
                    .where(deliveries_table.c.id.in_(claimed_ids))
                    .values(lease_until=lease, claim=token)
                )
        return out

    async def deliver(self) -> bool:
        """Claim and make one round of deliveries; True when it claimed any (a delivery
        made may let the next event of its aggregate go, so look again at once)."""
        claimed = await self.claim(self.settings.Concurrency)
        if not claimed:
            return False
        outcomes = await asyncio.gather(*(self._attempt(c) for c in claimed))
        await self._record(outcomes)
        return True

    async def _attempt(self, claimed: Claimed) -> tuple[Claimed, int | None, str | None]:
        status: int | None = None
        error: str | None = None
        if claimed.target is None:
            error = "the target was deleted"
        else:
            try:
                response = await self.client.post(claimed.target, claimed.body.encode())
                status = response.status
            except TargetError as exc:
                error, status = str(exc), exc.status
            except Exception as exc:  # a bug must not lose the delivery
                log.exception("actions: delivery %s failed unexpectedly", claimed.id)
                error = f"{type(exc).__name__}: {exc}"
        return claimed, status, error

    async def _record(self, outcomes: list[tuple[Claimed, int | None, str | None]]) -> None:
        """Record a round's results in one transaction, each by its claim's holder only."""
        delivered = [c for c, _, error in outcomes if error is None]
        async with self.db.write() as conn:
            if delivered:
                await conn.execute(
                    delete(deliveries_table).where(
                        deliveries_table.c.id.in_([c.id for c in delivered]),
                        deliveries_table.c.claim == delivered[0].claim,
                    )
                )
            for claimed, status, error in outcomes:
                if error is None:
                    continue
                attempts = claimed.attempts + 1
                parked = attempts >= self.settings.MaxAttempts or claimed.target is None
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "lease_until": None,
                    "claim": None,
                    "last_error": error[:2000],
                    "last_status": status,
                }
                if parked:
                    values["status"] = PARKED
                    log.error(
                        "actions: delivery %s parked after %d attempt(s): %s",
                        claimed.id, attempts, error,
                    )  # fmt: skip
                else:
                    values["next_attempt_at"] = datetime.now(UTC) + backoff(self.settings, attempts)
                    log.warning(
                        "actions: delivery %s failed (attempt %d): %s",
                        claimed.id, attempts, error,
                    )  # fmt: skip
                await conn.execute(
                    update(deliveries_table)
                    .where(
                        deliveries_table.c.id == claimed.id,
                        deliveries_table.c.claim == claimed.claim,
                    )
                    .values(**values)
                )


async def redrive(
    conn: AsyncConnection, instance_id: str, *, delivery_ids: list[int], target_id: str = ""
) -> int:
    """Put parked deliveries back in the queue, attempts reset; returns how many."""
    where = [deliveries_table.c.instance_id == instance_id, deliveries_table.c.status == PARKED]
    if delivery_ids:
        where.append(deliveries_table.c.id.in_(delivery_ids))
    if target_id:
        where.append(deliveries_table.c.target_id == target_id)
    result = await conn.execute(
        update(deliveries_table)
        .where(*where)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=datetime.now(UTC),
            lease_until=None,
            claim=None,
        )
    )
    return int(result.rowcount or 0)
