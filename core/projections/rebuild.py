"""Rebuilding a projection from the whole store, in bulk, resumable.

The projection's tables are dropped and recreated, its state set to
`rebuilding` at position 0, then events are replayed in large batches: each
batch's statements are folded per row by a BatchWriter and written with
multi-row statements, and the batch commits with the new position. An
interrupted rebuild (SIGTERM, SIGKILL, a lost node) resumes from the last
committed batch. The last catch-up of an inline projection runs under the push
lock, so no push lands between the replay and the switch to `active`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from donjon.core.database import Database
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.store import PUSH_LOCK_KEY, EventStore
from donjon.core.projections.base import Projection
from donjon.core.projections.state import (
    ACTIVE,
    REBUILDING,
    ProjectionState,
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
    unless `restart` is true."""
    async with db.write() as conn:
        state = await get_state(conn, projection.name)
        resuming = (
            not restart
            and state is not None
            and state.status == REBUILDING
            and state.version == projection.version
        )
        if not resuming:
            await conn.run_sync(_recreate_tables, projection)
            await put_state(conn, ProjectionState(projection.name, projection.version, REBUILDING, 0, None))  # type: ignore[arg-type]
            position = 0
        else:
            assert state is not None
            position = state.position
            log.info("projection %s: resuming rebuild at position %d", projection.name, position)
        head = await store.max_position(conn)
    resumed_from, handled = position, 0
    if progress:
        progress(position, head)
    while True:
        async with db.write() as conn:
            count, position, more = await _replay_batch(conn, store, projection, position, bulk_limit)
        handled += count
        if progress:
            progress(min(position, head), head)
        if not more:
            break
    async with db.write() as conn:
        if projection.inline and db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUSH_LOCK_KEY})
        while True:
            count, position, more = await _replay_batch(conn, store, projection, position, bulk_limit)
            handled += count
            if not more:
                break
        final = max(position, await store.max_position(conn))
        await put_state(conn, ProjectionState(projection.name, projection.version, ACTIVE, final, None))  # type: ignore[arg-type]
    if progress:
        progress(final, max(head, final))
    return RebuildResult(projection.name, handled, resumed_from, final)


def _recreate_tables(sync_conn, projection: Projection) -> None:  # type: ignore[no-untyped-def]
    for table in reversed(projection.tables):
        table.drop(sync_conn, checkfirst=True)
    for table in projection.tables:
        table.create(sync_conn)


async def _replay_batch(conn, store: EventStore, projection: Projection, after: int, limit: int):  # type: ignore[no-untyped-def]
    """Replay one batch after `after`; return (events, new position, more to read)."""
    head = await store.max_position(conn)
    batch = await store.query(
        EventQuery(
            event_types=projection.event_types, position_after=after, position_at_most=head, limit=limit
        ),
        conn=conn,
    )
    if not batch:
        await set_position(conn, projection.name, max(after, head))
        return 0, max(after, head), False
    try:
        async with conn.begin_nested():
            writer = BatchWriter(conn)
            for event in batch:
                await writer.add(projection.reduce(event))
            await writer.flush()
    except Exception as exc:
        log.warning(
            "projection %s: bulk write of %d events failed (%s); replaying them one by one",
            projection.name, len(batch), exc,
        )
        for event in batch:
            try:
                async with conn.begin_nested():
                    await apply_statements(conn, projection.reduce(event))
            except Exception as event_exc:
                # A rebuild replays history: the same event would fail again,
                # so it is parked at once and the rebuild goes on.
                await record_failure(conn, projection.name, event, f"{type(event_exc).__name__}: {event_exc}", 1)
                log.error(
                    "projection %s: event %d (%s) parked during rebuild: %s",
                    projection.name, event.position, event.type, event_exc,
                )
    full = len(batch) == limit
    position = batch[-1].position if full else max(batch[-1].position, head)
    await set_position(conn, projection.name, position)
    return len(batch), position, full
