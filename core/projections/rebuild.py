"""Rebuilding a projection from the whole store, in bulk, resumable.

The projection's tables are dropped and recreated, its state set to
`rebuilding` at position 0, then events are replayed in large batches: each
batch's statements are folded per row by a BatchWriter and written with
multi-row statements, and the batch commits with the new position. An
interrupted rebuild (SIGTERM, SIGKILL, a lost node) resumes from the last
committed batch. Each batch locks the state row and starts from the position
stored there, so two processes resuming the same rebuild share the work and
never replay a batch twice. The start and the last catch-up of an inline
projection run under the push lock: no push is half-way through writing the
old tables when they are dropped, and none lands between the replay and the
switch to `active` (pushes skip a rebuilding projection, see `inline`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.events import StoredEvent
from donjon.core.eventstore.store import PUSH_LOCK_KEY, EventStore
from donjon.core.projections.base import Projection
from donjon.core.projections.bulk import read_events
from donjon.core.projections.state import (
    ACTIVE,
    REBUILDING,
    ProjectionState,
    clear_failures,
    get_state,
    put_state,
    record_failure,
    set_position,
)
from donjon.core.projections.statements import BatchWriter, apply_statements

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (position reached, head at start)


@dataclass
class RebuildResult:
    projection: str
    events: int
    resumed_from: int
    position: int


def needs_rebuild(projection: Projection, state: ProjectionState | None) -> bool:
    return state is None or state.version != projection.version or state.status != ACTIVE


async def rebuild(
    db: Database,
    store: EventStore,
    projection: Projection,
    *,
    bulk_limit: int = 20000,
    restart: bool = False,
    progress: Progress | None = None,
) -> RebuildResult:
    """Rebuild `projection`, resuming an interrupted rebuild of the same version
    unless `restart` is true.

    Starting over drops and recreates the tables and forgets the projection's
    failed and parked events. `progress(position, head)` is called after each
    committed batch; an exception it raises stops the rebuild there, and the
    next call resumes. When another process finishes the rebuild meanwhile,
    this call stops and reports what it replayed.
    """
    async with db.write() as conn:
        await _hold_push_lock(db, conn, projection)
        state = await get_state(conn, projection.name, lock=True)
        resuming = (
            not restart
            and state is not None
            and state.status == REBUILDING
            and state.version == projection.version
        )
        if not resuming:
            await conn.run_sync(_recreate_tables, projection)
            await clear_failures(conn, projection.name)
            await put_state(
                conn, ProjectionState(projection.name, projection.version, REBUILDING, 0)
            )
            position = 0
        else:
            assert state is not None
            position = state.position
            log.info("projection %s: resuming rebuild at position %d", projection.name, position)
        head = await store.max_position(conn)
    resumed_from, handled = position, 0
    if progress:
        progress(position, head)
    try:
        while True:
            async with db.write() as conn:
                count, position, more = await _replay_batch(conn, store, projection, bulk_limit)
            handled += count
            if progress:
                progress(min(position, head), head)
            if not more:
                break
        async with db.write() as conn:
            await _hold_push_lock(db, conn, projection)
            while True:
                count, position, more = await _replay_batch(conn, store, projection, bulk_limit)
                handled += count
                if not more:
                    break
            # `position` is the head the last batch read, not the head now: for
            # an async projection a later push may be committed already, and
            # the runner must still see it.
            await put_state(
                conn, ProjectionState(projection.name, projection.version, ACTIVE, position)
            )
    except _NotRebuilding:
        async with db.read() as conn:
            state = await get_state(conn, projection.name)
        log.info("projection %s: another process finished the rebuild", projection.name)
        return RebuildResult(projection.name, handled, resumed_from, state.position if state else 0)
    if progress:
        progress(position, max(head, position))
    return RebuildResult(projection.name, handled, resumed_from, position)


class _NotRebuilding(Exception):
    """The projection is no longer rebuilding at this version: another process
    finished or restarted the rebuild."""


async def _hold_push_lock(db: Database, conn: AsyncConnection, projection: Projection) -> None:
    """Keep pushes out until this transaction ends (inline projections only; on
    SQLite the write transaction already does)."""
    if projection.inline and db.is_postgres:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUSH_LOCK_KEY})


def _recreate_tables(sync_conn, projection: Projection) -> None:  # type: ignore[no-untyped-def]
    for table in reversed(projection.tables):
        table.drop(sync_conn, checkfirst=True)
    for table in projection.tables:
        table.create(sync_conn)


async def _replay_batch(conn, store: EventStore, projection: Projection, limit: int):  # type: ignore[no-untyped-def]
    """Replay one batch after the position stored in the (locked) state row;
    return (events, new position, more to read). Raises _NotRebuilding."""
    state = await get_state(conn, projection.name, lock=True)
    if state is None or state.status != REBUILDING or state.version != projection.version:
        raise _NotRebuilding(projection.name)
    after = state.position
    head = max(after, await store.max_position(conn))
    with _cyclic_gc_paused():
        if projection.event_types:
            batch, position = await read_events(conn, projection.event_types, after, head, limit)
        else:
            batch, position = [], head  # a projection that handles nothing reads nothing
        if batch:
            await _write_batch(conn, projection, batch)
    await set_position(conn, projection.name, position)
    return len(batch), position, position < head


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch.

    A batch allocates hundreds of thousands of small containers (events,
    payloads, statements, pending rows) that all live until it ends: the
    collector walks them again and again and frees nothing, which costs a
    rebuild about a quarter of its time. Reference counting still frees what
    dies; the collector runs again after the batch, if it ran before.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _write_batch(
    conn: AsyncConnection, projection: Projection, batch: list[StoredEvent]
) -> None:
    """Fold the batch's statements per row and write the result in bulk; if
    that fails, replay the events one by one and park those that fail."""
    try:
        async with conn.begin_nested():
            writer = BatchWriter(conn)
            fold = writer.fold
            for statements in map(projection.reduce, batch):
                for statement in statements:
                    if not fold(statement):
                        await writer.run_in_order(statement)
            await writer.flush()
        return
    except Exception as exc:
        log.warning(
            "projection %s: bulk write of %d events failed (%s); replaying them one by one",
            projection.name,
            len(batch),
            exc,
        )
    for event in batch:
        try:
            async with conn.begin_nested():
                await apply_statements(conn, projection.reduce(event))
        except Exception as event_exc:
            # A rebuild replays history: the same event would fail again,
            # so it is parked at once and the rebuild goes on.
            error = f"{type(event_exc).__name__}: {event_exc}"
            await record_failure(conn, projection.name, event, error, 1)
            log.error(
                "projection %s: event %d (%s) parked during rebuild: %s",
                projection.name,
                event.position,
                event.type,
                event_exc,
            )
