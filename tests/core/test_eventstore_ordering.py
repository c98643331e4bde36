"""A follower of the global position never skips an event, however commits interleave.

Many writers push concurrently through their own connections, some pausing
inside their transactions so that they start in one order and commit in
another, some rolling back; one follower reads `position_after=cursor` and
moves its cursor the way `ProjectionRunner.process_batch` does (to the head
when a batch comes back short). It must see every committed event exactly
once, in position order, with no position missing: the push lock in
`donjon.core.eventstore.store` is what makes that hold.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.errors import ConcurrencyError
from donjon.core.events import AggregateChanges, StoredEvent
from donjon.core.eventstore import EventQuery, EventStore
from donjon.core.eventstore.schema import events
from donjon.core.setup.init import create_tables
from tests.core.eventstore_cases import (
    AccountClosed,
    AccountOpened,
    AccountRenamed,
    TeamFormed,
    account,
    registry,
    team,
)

pytestmark = pytest.mark.anyio

# Pushes per PostgreSQL writer; raise it for a soak run (DONJON_TEST_ORDERING_PUSHES=500).
PG_PUSHES = int(os.environ.get("DONJON_TEST_ORDERING_PUSHES", "30"))

Begin = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Rollback(Exception):
    """A writer abandons its transaction after the push assigned positions."""


@dataclass
class Run:
    """What the writers committed and what the follower saw."""

    committed: list[StoredEvent] = field(default_factory=list)
    seen: list[StoredEvent] = field(default_factory=list)
    # Pushes that assigned positions and have not yet committed or rolled back.
    in_flight: int = 0
    # Follower reads made while some push was in flight.
    reads_during_flight: int = 0
    rolled_back: int = 0
    writers_done: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(store: EventStore, begin: Begin, run: Run, *, limit: int) -> None:
    """Follow the store until the writers are done and the head is read.

    One step is one transaction, as in `ProjectionRunner.process_batch`: read
    the head, read the events after the cursor up to it, then move the cursor
    to the last event of a full batch, or to the head after a short one.
    """
    cursor = 0
    while True:
        finished = run.writers_done.is_set()
        async with begin() as conn:
            run.reads_during_flight += run.in_flight > 0
            head = await store.max_position(conn)
            batch: list[StoredEvent] = []
            if head > cursor:
                batch = await store.query(
                    EventQuery(position_after=cursor, position_at_most=head, limit=limit),
                    conn=conn,
                )
        for event in batch:
            # Never position N+1 before N: positions are gap-free, so each
            # event the follower sees must be the very next one.
            assert event.position == cursor + 1, f"after {cursor} the follower saw {event.position}"
            run.seen.append(event)
            cursor = event.position
        if len(batch) < limit:
            cursor = max(cursor, head)
        if finished and head <= cursor and len(batch) < limit:
            return
        await asyncio.sleep(0)


async def write(
    store: EventStore, writer: int, pushes: int, run: Run, rng: random.Random, pause: float
) -> None:
    """Push single events, multi-event and multi-aggregate pushes, and a few rollbacks.

    Pauses before the push (so transactions overtake each other) and after it,
    before commit (so the push lock is held while others wait).
    """
    for n in range(pushes):
        own = account(f"w{writer}-{n % 7}")
        roll = rng.random()
        if roll < 0.80:
            changes = [AggregateChanges(own, [AccountRenamed(f"{writer}.{n}")])]
        elif roll < 0.95:
            changes = [
                AggregateChanges(own, [AccountRenamed(f"{writer}.{n}"), AccountClosed()]),
                AggregateChanges(team(f"w{writer}"), [TeamFormed(f"{writer}.{n}")]),
            ]
        else:
            changes = [AggregateChanges(own, [AccountOpened(f"rolled back {writer}.{n}")])]
        in_flight = False
        try:
            async with store.db.write() as conn:
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0, pause))
                stored = await store.push_in(conn, changes, creator=f"writer-{writer}")
                in_flight = True
                run.in_flight += 1
                if rng.random() < 0.2:
                    await asyncio.sleep(rng.uniform(0, pause))
                if roll >= 0.95:
                    raise Rollback
        except Rollback:
            run.rolled_back += 1
            continue
        finally:
            # Only now is the commit (or rollback) done.
            run.in_flight -= in_flight
        run.committed.extend(stored)


async def hot_aggregate(store: EventStore, writer: int, pushes: int, run: Run) -> None:
    """Append to one aggregate that every such writer shares, without expected sequences."""
    for n in range(pushes):
        stored = await store.push(
            AggregateChanges(account("hot"), [AccountRenamed(f"hot {writer}.{n}")]),
            creator=f"hot-{writer}",
        )
        run.committed.extend(stored)


async def race(
    stores: list[EventStore],
    begin: Begin,
    *,
    writers: int,
    pushes: int,
    hot_writers: int,
    hot_pushes: int,
    pause: float,
    limit: int,
    give_up_after: float = 60,
) -> Run:
    """Run the writers (spread over `stores`) against one follower; return what happened."""
    run = Run()
    rng = random.Random(20240611)
    tasks = [
        write(stores[i % len(stores)], i, pushes, run, random.Random(rng.random()), pause)
        for i in range(writers)
    ]
    tasks += [
        hot_aggregate(stores[i % len(stores)], i, hot_pushes, run) for i in range(hot_writers)
    ]

    async def writers_then_done() -> None:
        try:
            await asyncio.gather(*tasks)
        finally:
            run.writers_done.set()

    async with asyncio.timeout(give_up_after):
        await asyncio.gather(writers_then_done(), follow(stores[0], begin, run, limit=limit))
    return run


def assert_seen_exactly_once_in_order(run: Run, *, pushes: int, reads_in_flight: bool) -> None:
    """Every committed event seen once, in order; `reads_in_flight`: the follower
    must have read while pushes held uncommitted positions (it cannot when its
    transaction takes the SQLite write lock)."""
    committed = sorted(run.committed, key=lambda e: e.position)
    assert run.rolled_back > 0, "some pushes must roll back for the test to mean anything"
    if reads_in_flight:
        assert run.reads_during_flight > 0, "the follower must read while pushes are in flight"
    assert len(committed) > pushes
    assert [e.position for e in committed] == list(range(1, len(committed) + 1))
    assert [e.position for e in run.seen] == [e.position for e in committed]
    assert run.seen == committed
    assert not any(e.payload.get("name", "").startswith("rolled back") for e in run.seen)


def sequences_are_gap_free(evs: list[StoredEvent]) -> bool:
    by_aggregate: dict[tuple[str, str, str], list[int]] = {}
    for e in sorted(evs, key=lambda e: e.position):
        by_aggregate.setdefault((e.instance_id, e.aggregate_type, e.aggregate_id), []).append(
            e.sequence
        )
    return all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_aggregate.values())


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
async def pg_store(pg_dsn: str) -> AsyncIterator[EventStore]:
    db = Database.postgres(pg_dsn, pool_size=24, max_overflow=4)
    await create_tables(db)
    try:
        yield EventStore(db, registry())
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_many_concurrent_writers_on_postgres_one_follower_sees_every_event_once(
    pg_store: EventStore,
) -> None:
    run = await race(
        [pg_store],
        pg_store.db.write,
        writers=16,
        pushes=PG_PUSHES,
        hot_writers=4,
        hot_pushes=PG_PUSHES // 4,
        pause=0.004,
        limit=50,
        give_up_after=2 * PG_PUSHES,
    )
    assert_seen_exactly_once_in_order(run, pushes=16 * PG_PUSHES, reads_in_flight=True)
    assert sequences_are_gap_free(run.seen)
    assert run.seen == await pg_store.query(EventQuery())


@pytest.mark.postgres
async def test_on_postgres_a_push_waits_for_the_uncommitted_push_before_it(
    pg_store: EventStore,
) -> None:
    store = pg_store
    async with store.db.write() as first:
        [one] = await store.push_in(
            first, [AggregateChanges(account("a"), [AccountOpened("a")])], creator="u"
        )
        second = asyncio.create_task(
            store.push(AggregateChanges(account("b"), [AccountOpened("b")]), creator="u")
        )
        await asyncio.sleep(0.3)
        assert not second.done(), "the second push must wait for the push lock"
        assert await store.query(EventQuery()) == []
        assert await store.max_position() == 0
    [two] = await second
    assert (one.position, two.position) == (1, 2)
    assert await store.query(EventQuery()) == [one, two]


@pytest.mark.postgres
async def test_without_the_push_lock_a_follower_would_skip_a_late_commit(
    pg_store: EventStore,
) -> None:
    """The hazard the push lock removes, shown with positions assigned by hand.

    Position 1 commits after position 2; a follower that read in between
    moved its cursor past 1 and never sees it.
    """
    db = pg_store.db

    def row(position: int) -> dict[str, object]:
        return {
            "instance_id": "i1",
            "aggregate_type": "account",
            "aggregate_id": f"acc-{position}",
            "sequence": 1,
            "position": position,
            "event_type": "account.closed",
            "revision": 1,
            "payload": {},
            "creator": "u",
            "owner": "",
            "created_at": datetime.now(UTC),
        }

    seen: list[int] = []
    cursor = 0

    async def follower_step() -> None:
        nonlocal cursor
        async with db.write() as conn:
            head = await pg_store.max_position(conn)
            batch = await pg_store.query(
                EventQuery(position_after=cursor, position_at_most=head), conn=conn
            )
        seen.extend(e.position for e in batch)
        cursor = max(cursor, head)

    async with db.write() as late:
        await late.execute(insert(events), [row(1)])
        async with db.write() as early:
            await early.execute(insert(events), [row(2)])
        await follower_step()
    await follower_step()
    assert seen == [2]
    assert [e.position for e in await pg_store.query(EventQuery())] == [1, 2]


# -- SQLite -------------------------------------------------------------------------


@pytest.fixture
async def sqlite_stores(tmp_path: Path) -> AsyncIterator[list[EventStore]]:
    """Two stores on one file, like two processes: each has its own write lock."""
    dbs = [Database.sqlite(tmp_path / "events.db") for _ in range(2)]
    await create_tables(dbs[0])
    try:
        yield [EventStore(db, registry()) for db in dbs]
    finally:
        for db in dbs:
            await db.dispose()


@pytest.mark.parametrize("follower_transaction", ["write", "read"])
async def test_concurrent_writers_on_sqlite_one_follower_sees_every_event_once(
    sqlite_stores: list[EventStore], follower_transaction: str
) -> None:
    db = sqlite_stores[0].db
    run = await race(
        sqlite_stores,
        db.write if follower_transaction == "write" else db.read,
        writers=8,
        pushes=25,
        hot_writers=2,
        hot_pushes=8,
        pause=0.002,
        limit=20,
    )
    assert_seen_exactly_once_in_order(
        run, pushes=8 * 25, reads_in_flight=follower_transaction == "read"
    )
    assert sequences_are_gap_free(run.seen)


async def test_concurrent_pushes_at_one_expected_sequence_on_two_sqlite_handles(
    sqlite_stores: list[EventStore],
) -> None:
    """Two handles on one file race for one aggregate: exactly one push wins."""
    await sqlite_stores[0].push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")

    async def rename(store: EventStore, i: int) -> bool:
        try:
            await store.push(AggregateChanges(account(), [AccountRenamed(f"n{i}")], 1), creator="u")
        except ConcurrencyError:
            return False
        return True

    outcomes = await asyncio.gather(*(rename(sqlite_stores[i % 2], i) for i in range(6)))
    assert outcomes.count(True) == 1
