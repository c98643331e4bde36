"""The event store: append events with their unique values, read them back.

Ordering guarantee. Every push takes one global lock just before it assigns
positions (PostgreSQL: a transaction-level advisory lock; SQLite: the
database write lock it already holds) and keeps it until commit. Positions are
therefore assigned in commit order and a position becomes visible only after
every smaller one: a reader that follows `position` never skips an event that
commits late. The lock is held only for the insert and the inline projection
writes; validation and unique constraints run before it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.errors import ConcurrencyError, UniqueConstraintError
from donjon.core.events import (
    AddUnique,
    AggregateChanges,
    EventRegistry,
    RemoveUnique,
    StoredEvent,
)
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.schema import events, unique_constraints

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the push lock ("donj").
PUSH_LOCK_KEY = 0x646F6E6A

InlineHandler = Callable[[AsyncConnection, list[StoredEvent]], Awaitable[None]]
PushListener = Callable[[list[StoredEvent]], None]


class _SequenceRace(Exception):
    """Another writer took the sequence this push computed."""


class EventStore:
    """Push and read events; see the module docstring for the ordering guarantee."""

    def __init__(self, db: Database, registry: EventRegistry, *, max_retries: int = 5) -> None:
        self.db = db
        self.registry = registry
        self.max_retries = max_retries
        # Inline projections: run inside the push transaction, after the insert.
        self.inline_handlers: list[InlineHandler] = []
        # Told of every committed push in this process (wakes async projections).
        self.listeners: list[PushListener] = []

    async def push(
        self, changes: Sequence[AggregateChanges] | AggregateChanges, *, creator: str
    ) -> list[StoredEvent]:
        """Append the events of each aggregate atomically and return them as stored.

        Raises ConcurrencyError when an aggregate with an `expected_sequence`
        moved on (or races persist past Eventstore.MaxRetries),
        UniqueConstraintError when a unique value is taken, and
        UnknownEventTypeError for an unregistered event type. On any error
        nothing is written.
        """
        if isinstance(changes, AggregateChanges):
            changes = [changes]
        self._check(changes)
        attempt = 0
        while True:
            try:
                async with self.db.write() as conn:
                    stored = await self.push_in(conn, changes, creator=creator)
                break
            except _SequenceRace:
                attempt += 1
                if attempt > self.max_retries:
                    raise ConcurrencyError(
                        f"push still racing other writers after {self.max_retries} retries"
                    ) from None
        for listener in self.listeners:
            listener(stored)
        return stored

    async def push_in(
        self, conn: AsyncConnection, changes: Sequence[AggregateChanges], *, creator: str
    ) -> list[StoredEvent]:
        """Push inside a transaction the caller holds (see `push`); no retries."""
        self._check(changes)
        heads = [await self._head(conn, c) for c in changes]
        await self._apply_unique(conn, changes)
        if self.db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUSH_LOCK_KEY})
        last = (await conn.execute(select(func.coalesce(func.max(events.c.position), 0)))).scalar_one()
        now = datetime.now(UTC)
        stored: list[StoredEvent] = []
        for change, (sequence, owner) in zip(changes, heads, strict=True):
            agg = change.aggregate
            for event in change.events:
                last += 1
                sequence += 1
                stored.append(
                    StoredEvent(
                        position=last,
                        instance_id=agg.instance_id,
                        aggregate_type=agg.type,
                        aggregate_id=agg.id,
                        sequence=sequence,
                        type=event.TYPE,
                        revision=event.REVISION,
                        payload=event.payload(),
                        creator=creator,
                        owner=owner,
                        created_at=now,
                    )
                )
        if not stored:
            return stored
        try:
            await conn.execute(insert(events), [_row(e) for e in stored])
        except IntegrityError as exc:
            if any(c.expected_sequence is not None for c in changes):
                raise ConcurrencyError("the aggregate was changed by another writer") from exc
            raise _SequenceRace() from exc
        for handler in self.inline_handlers:
            await handler(conn, stored)
        return stored

    def _check(self, changes: Sequence[AggregateChanges]) -> None:
        for change in changes:
            for event in change.events:
                self.registry.check(event)
                if event.AGGREGATE_TYPE != change.aggregate.type:
                    raise ValueError(
                        f"{event.TYPE} belongs to aggregate type {event.AGGREGATE_TYPE!r},"
                        f" not {change.aggregate.type!r}"
                    )

    async def _head(self, conn: AsyncConnection, change: AggregateChanges) -> tuple[int, str]:
        """The aggregate's current sequence and owner, checked against the expected one."""
        agg = change.aggregate
        row = (
            await conn.execute(
                select(events.c.sequence, events.c.owner)
                .where(
                    events.c.instance_id == agg.instance_id,
                    events.c.aggregate_type == agg.type,
                    events.c.aggregate_id == agg.id,
                )
                .order_by(events.c.sequence.desc())
                .limit(1)
            )
        ).first()
        sequence, owner = (row[0], row[1]) if row else (0, agg.owner)
        if change.expected_sequence is not None and change.expected_sequence != sequence:
            raise ConcurrencyError(
                f"{agg.type} {agg.id} is at sequence {sequence}, "
                f"the command expected {change.expected_sequence}"
            )
        return sequence, owner or agg.owner

    async def _apply_unique(self, conn: AsyncConnection, changes: Sequence[AggregateChanges]) -> None:
        for change in changes:
            instance = change.aggregate.instance_id
            for op in change.unique:
                key = ("" if op.is_global else instance, op.unique_type, op.unique_field.lower())
                if isinstance(op, RemoveUnique):
                    await conn.execute(
                        delete(unique_constraints).where(
                            tuple_(
                                unique_constraints.c.instance_id,
                                unique_constraints.c.unique_type,
                                unique_constraints.c.unique_field,
                            )
                            == key
                        )
                    )
                    continue
                assert isinstance(op, AddUnique)
                ins = (pg_insert if self.db.is_postgres else sqlite_insert)(unique_constraints)
                claimed = await conn.execute(
                    ins.values(instance_id=key[0], unique_type=key[1], unique_field=key[2])
                    .on_conflict_do_nothing()
                    .returning(unique_constraints.c.unique_field)
                )
                if claimed.first() is None:
                    raise UniqueConstraintError(
                        op.error_message, unique_type=op.unique_type, unique_field=op.unique_field
                    )

    # -- reading -----------------------------------------------------------------

    async def query(self, query: EventQuery, *, conn: AsyncConnection | None = None) -> list[StoredEvent]:
        if conn is not None:
            return [to_stored(r) for r in await conn.execute(query.select())]
        async with self.db.read() as own:
            return [to_stored(r) for r in await own.execute(query.select())]

    async def stream(self, query: EventQuery, *, batch: int = 1000) -> AsyncIterator[StoredEvent]:
        """All matching events in position order, read in batches (keyset on position)."""
        after = query.position_after
        remaining = query.limit
        while True:
            size = batch if remaining is None else min(batch, remaining)
            page = await self.query(_replace(query, position_after=after, limit=size, descending=False))
            for event in page:
                yield event
            if len(page) < size:
                return
            after = page[-1].position
            if remaining is not None:
                remaining -= len(page)
                if remaining <= 0:
                    return

    async def aggregate_events(
        self, instance_id: str, aggregate_type: str, aggregate_id: str, *, conn: AsyncConnection | None = None
    ) -> list[StoredEvent]:
        q = EventQuery(
            instance_ids=(instance_id,), aggregate_types=(aggregate_type,), aggregate_ids=(aggregate_id,)
        )
        return await self.query(q, conn=conn)

    async def max_position(self, conn: AsyncConnection | None = None) -> int:
        stmt = select(func.coalesce(func.max(events.c.position), 0))
        if conn is not None:
            return (await conn.execute(stmt)).scalar_one()
        async with self.db.read() as own:
            return (await own.execute(stmt)).scalar_one()


def _replace(query: EventQuery, **changes: Any) -> EventQuery:
    from dataclasses import replace

    return replace(query, **changes)


def _row(e: StoredEvent) -> dict[str, Any]:
    return {
        "instance_id": e.instance_id,
        "aggregate_type": e.aggregate_type,
        "aggregate_id": e.aggregate_id,
        "sequence": e.sequence,
        "position": e.position,
        "event_type": e.type,
        "revision": e.revision,
        "payload": e.payload,
        "creator": e.creator,
        "owner": e.owner,
        "created_at": e.created_at,
    }


def to_stored(row: Any) -> StoredEvent:
    m = row._mapping
    return StoredEvent(
        position=m["position"],
        instance_id=m["instance_id"],
        aggregate_type=m["aggregate_type"],
        aggregate_id=m["aggregate_id"],
        sequence=m["sequence"],
        type=m["event_type"],
        revision=m["revision"],
        payload=m["payload"],
        creator=m["creator"],
        owner=m["owner"],
        created_at=m["created_at"],
    )
