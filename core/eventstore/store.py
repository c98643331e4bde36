"""The event store: append events with their unique values, read them back.

Ordering guarantee. Every push takes one global lock just before it assigns
positions (PostgreSQL: a transaction-level advisory lock; SQLite: the
database write lock it already holds) and keeps it until commit. Positions are
therefore assigned in commit order and a position becomes visible only after
every smaller one: a reader that follows `position` never skips an event that
commits late.

Under the lock a push reads its aggregates' heads (so sequences never race),
inserts, and runs the inline projections; validation and the unique claims
run before it. Claims are made in one canonical order, so two pushes claiming
the same values cannot deadlock. See docs/eventstore.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.errors import ConcurrencyError, UniqueConstraintError
from donjon.core.events import (
    AddUnique,
    Aggregate,
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
# Works out a push's changes while it holds the push lock (see `push_decided`).
Decider = Callable[[AsyncConnection], Awaitable[Sequence[AggregateChanges]]]
PushListener = Callable[[list[StoredEvent]], None]


# serialization_failure, deadlock_detected: the database aborted the
# transaction and the same push may well succeed when run again.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient(exc: DBAPIError) -> bool:
    """Whether the database aborted the transaction for a reason a retry can clear."""
    return getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


class EventStore:
    """Push and read events; see the module docstring for the ordering guarantee."""

    def __init__(self, db: Database, registry: EventRegistry, *, max_retries: int = 5) -> None:
        """`max_retries`: how often `push` reruns a transaction the database aborted
        as a deadlock victim or a serialization failure (Eventstore.MaxRetries)."""
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
        moved on, UniqueConstraintError when a unique value is taken,
        UnknownEventTypeError for an unregistered event type and ValueError for
        an event pushed to an aggregate of another type. On any error nothing
        is written. A transaction the database aborts as transient (deadlock,
        serialization failure) is rerun up to `max_retries` times. Listeners
        are told of a push that stored events, after it committed.
        """
        if isinstance(changes, AggregateChanges):
            changes = [changes]
        self._check(changes)  # fail before opening a transaction
        attempt = 0
        while True:
            try:
                async with self.db.write() as conn:
                    stored = await self.push_in(conn, changes, creator=creator) if changes else []
                break
            except DBAPIError as exc:
                if not is_transient(exc) or attempt >= self.max_retries:
                    raise
                attempt += 1
                log.info("push aborted by the database (%s); retry %d", exc.orig, attempt)
        if stored:
            for listener in self.listeners:
                listener(stored)
        return stored

    async def push_decided(self, decide: Decider, *, creator: str) -> list[StoredEvent]:
        """Push the changes `decide(conn)` works out while this push holds the push lock.

        For a command that must never lose a race but must decide on the
        latest state, such as a login counting failed password checks: the
        lock is taken first, so what `decide` reads in `conn` includes every
        committed push and nothing can commit before this one does. Its
        changes then need no `expected_sequence`. `decide` returns the changes
        (none: nothing is pushed) or raises to push nothing; it must be quick,
        since every other push waits for it, and its changes must not claim
        unique values (a claim can wait for a push that waits for the lock).
        A transaction the database aborts as transient is rerun, `decide`
        included, as in `push`.
        """
        attempt = 0
        while True:
            try:
                async with self.db.write() as conn:
                    await self._lock(conn)
                    changes = list(await decide(conn))
                    if any(change.unique for change in changes):
                        raise ValueError("push_decided: changes must not claim unique values")
                    stored = await self.push_in(conn, changes, creator=creator) if changes else []
                break
            except DBAPIError as exc:
                if not is_transient(exc) or attempt >= self.max_retries:
                    raise
                attempt += 1
                log.info("push aborted by the database (%s); retry %d", exc.orig, attempt)
        if stored:
            for listener in self.listeners:
                listener(stored)
        return stored

    async def _lock(self, conn: AsyncConnection) -> None:
        """Take the push lock until the transaction ends (SQLite: already held)."""
        if self.db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUSH_LOCK_KEY})

    async def push_in(
        self, conn: AsyncConnection, changes: Sequence[AggregateChanges], *, creator: str
    ) -> list[StoredEvent]:
        """Push inside a transaction the caller holds (see `push`); no retries.

        The errors are those of `push`; after one, the caller must roll back.
        The transaction must be READ COMMITTED (what `Database.write` opens):
        an older snapshot cannot see the pushes committed before the lock was
        granted. The push lock is held until the caller commits, so commit
        promptly and push once per transaction.
        """
        self._check(changes)
        # Before the lock: a claim may wait for another push holding the value.
        await self._apply_unique(conn, changes)
        await self._lock(conn)
        heads = await self._heads(conn, changes)
        last = await self.max_position(conn)
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
            # Heads and positions are read under the lock, so this takes a
            # transaction whose snapshot predates the lock (see above).
            raise ConcurrencyError(
                "another push committed sequences or positions this one computed"
            ) from exc
        for handler in self.inline_handlers:
            await handler(conn, stored)
        return stored

    def _check(self, changes: Sequence[AggregateChanges]) -> None:
        """Refuse unregistered event types and events pushed to another aggregate type."""
        for change in changes:
            for event in change.events:
                self.registry.check(event)
                if event.AGGREGATE_TYPE != change.aggregate.type:
                    raise ValueError(
                        f"{event.TYPE} belongs to aggregate type {event.AGGREGATE_TYPE!r},"
                        f" not {change.aggregate.type!r}"
                    )

    async def _heads(
        self, conn: AsyncConnection, changes: Sequence[AggregateChanges]
    ) -> list[tuple[int, str]]:
        """For each change, the sequence its events follow and the owner they get.

        An aggregate named twice in one push continues after its earlier
        changes, and each `expected_sequence` is checked against that running
        head. The owner is the one the aggregate's events already carry; only a
        new aggregate takes `Aggregate.owner`.
        """
        running: dict[tuple[str, str, str], tuple[int, str]] = {}
        heads: list[tuple[int, str]] = []
        for change in changes:
            agg = change.aggregate
            key = (agg.instance_id, agg.type, agg.id)
            if key not in running:
                running[key] = await self._head(conn, agg)
            sequence, owner = running[key]
            if change.expected_sequence is not None and change.expected_sequence != sequence:
                raise ConcurrencyError(
                    f"{agg.type} {agg.id} is at sequence {sequence}, "
                    f"the command expected {change.expected_sequence}"
                )
            heads.append((sequence, owner))
            running[key] = (sequence + len(change.events), owner)
        return heads

    async def _head(self, conn: AsyncConnection, agg: Aggregate) -> tuple[int, str]:
        """The aggregate's current sequence (0 when new) and its owner."""
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
        if row is None:
            return 0, agg.owner
        return row[0], row[1] or agg.owner

    async def _apply_unique(
        self, conn: AsyncConnection, changes: Sequence[AggregateChanges]
    ) -> None:
        """Claim and release the pushes' unique values (compared case-insensitively).

        In key order (stable, so a release before a claim of one value stays
        first): pushes that claim the same values then lock them in the same
        order and wait for each other instead of deadlocking.
        """
        ops = [(_unique_key(op, c.aggregate.instance_id), op) for c in changes for op in c.unique]
        ops.sort(key=lambda pair: pair[0])
        for key, op in ops:
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

    async def query(
        self, query: EventQuery, *, conn: AsyncConnection | None = None
    ) -> list[StoredEvent]:
        """The events `query` matches, in one SELECT (inside `conn` when given)."""
        if conn is not None:
            return [to_stored(r) for r in await conn.execute(query.select())]
        async with self.db.read() as own:
            return [to_stored(r) for r in await own.execute(query.select())]

    async def stream(self, query: EventQuery, *, batch: int = 1000) -> AsyncIterator[StoredEvent]:
        """All events `query` matches, in its order, read in pages of `batch`.

        Each page is its own read (keyset on position), so a long stream holds
        no transaction open; an ascending stream without `position_at_most`
        also yields events committed while it runs.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        remaining = query.limit
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            page = await self.query(replace(query, limit=size))
            for event in page:
                yield event
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            edge = page[-1].position
            if query.descending:
                query = replace(query, position_at_most=edge - 1)
            else:
                query = replace(query, position_after=edge)

    async def aggregate_events(
        self,
        instance_id: str,
        aggregate_type: str,
        aggregate_id: str,
        *,
        conn: AsyncConnection | None = None,
    ) -> list[StoredEvent]:
        """One aggregate's events in sequence order."""
        q = EventQuery(
            instance_ids=(instance_id,),
            aggregate_types=(aggregate_type,),
            aggregate_ids=(aggregate_id,),
        )
        return await self.query(q, conn=conn)

    async def max_position(self, conn: AsyncConnection | None = None) -> int:
        """The head: the largest committed position (0 for an empty store).

        Every position up to it is committed too (see the module docstring).
        """
        stmt = select(func.coalesce(func.max(events.c.position), 0))
        if conn is not None:
            return (await conn.execute(stmt)).scalar_one()
        async with self.db.read() as own:
            return (await own.execute(stmt)).scalar_one()


def _unique_key(op: AddUnique | RemoveUnique, instance_id: str) -> tuple[str, str, str]:
    """The row of a unique value: instance '' when global, the value lowercased."""
    return ("" if op.is_global else instance_id, op.unique_type, op.unique_field.lower())


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
