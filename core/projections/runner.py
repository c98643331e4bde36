"""Async projections: caught up after commit, each event handled once.

Each batch runs in one transaction that locks the projection's state row
(PostgreSQL: FOR UPDATE SKIP LOCKED, so a second process skips instead of
waiting; SQLite: the database write lock), applies the events, and commits
their rows together with the new position. A crash loses nothing and repeats
nothing. An event whose handler or statements fail leaves no row behind (a
database error makes the batch run again with a savepoint per event) and is
counted; the projection stops there and retries after RetryFailedAfter, and
after MaxFailureCount failures the event is parked and the projection goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from donjon.core.database import Database
from donjon.core.events import StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.store import EventStore
from donjon.core.projections.base import Projection
from donjon.core.projections.follow import follow
from donjon.core.projections.state import (
    ACTIVE,
    clear_failure,
    get_state,
    record_failure,
    set_position,
)
from donjon.core.projections.statements import apply_statements
from donjon.core.settings import ProjectionSettings

log = logging.getLogger(__name__)


class ProjectionRunner:
    """Runs every async projection of this process until stopped.

    Several processes may run the same projections on one PostgreSQL
    database: each batch holds the projection's state row, so each event is
    handled by exactly one of them.
    """

    def __init__(
        self,
        db: Database,
        store: EventStore,
        projections: Iterable[Projection],
        settings: ProjectionSettings,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.projections = [p for p in projections if not p.inline]
        self._wake = {p.name: asyncio.Event() for p in self.projections}
        # When each projection may retry a failed event (as this process last saw).
        self._retry_at: dict[str, datetime | None] = {p.name: None for p in self.projections}
        self._by_type: dict[str, list[str]] = {}
        for p in self.projections:
            for t in p.event_types:
                self._by_type.setdefault(t, []).append(p.name)

    def notify(self, stored: list[StoredEvent]) -> None:
        """Wake the projections that handle any of these just-committed events."""
        for event in stored:
            for name in self._by_type.get(event.type, ()):
                self._wake[name].set()

    async def run(self) -> None:
        """Follow the store until cancelled."""
        async with asyncio.TaskGroup() as group:
            for p in self.projections:
                group.create_task(self._follow(p), name=f"projection {p.name}")

    async def _follow(self, projection: Projection) -> None:
        await follow(
            f"projection {projection.name}",
            self._wake[projection.name],
            lambda: self.catch_up(projection),
            self.settings.RequeueEvery.total_seconds(),
            lambda: self._retry_at[projection.name],
        )

    async def catch_up(self, projection: Projection) -> int:
        """Handle batches until the projection is at the head (or waits for a retry,
        or another process holds it); return the events handled."""
        handled = 0
        while True:
            count, more = await self.process_batch(projection)
            handled += count
            if not more:
                return handled

    async def process_batch(self, projection: Projection) -> tuple[int, bool]:
        """One transaction's worth of events: returns (events handled, more waiting).

        Handles nothing when another process holds the projection, when it is
        not active at this version (setup rebuilds it), or while a failed
        event waits for its retry time. Parked events count as handled.
        """
        try:
            return await self._process_batch(projection, careful=False)
        except _StatementFailed:
            # Redo the batch with a savepoint per event, to tell which one fails.
            return await self._process_batch(projection, careful=True)

    async def _process_batch(self, projection: Projection, *, careful: bool) -> tuple[int, bool]:
        """`process_batch`; unless `careful`, statements run without a savepoint
        per event and a database error raises _StatementFailed (the transaction
        is rolled back: PostgreSQL would refuse anything after the error)."""
        name = projection.name
        limit = self.settings.bulk_limit(name)
        max_failures = self.settings.max_failure_count(name)
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            state = await get_state(conn, name, lock=True, skip_locked=True)
            if state is None or state.status != ACTIVE or state.version != projection.version:
                return 0, False  # locked elsewhere, or waiting for setup to (re)build it
            self._retry_at[name] = state.retry_at
            if state.retry_at is not None and state.retry_at > now:
                return 0, False
            head = await self.store.max_position(conn)
            if head <= state.position:
                return 0, False
            query = EventQuery(
                event_types=projection.event_types,
                position_after=state.position,
                position_at_most=head,
                limit=limit,
            )
            # A projection that handles nothing must not read everything (an empty filter).
            batch = await self.store.query(query, conn=conn) if projection.event_types else []
            # After a failure, the first event is the one that failed before.
            retrying = state.retry_at is not None
            position, retry_at, handled = state.position, None, 0
            for event in batch:
                try:
                    # A handler error leaves nothing to undo: nothing is written yet.
                    statements = list(projection.reduce(event))
                    if careful:
                        async with conn.begin_nested():
                            await apply_statements(conn, statements)
                    else:
                        try:
                            await apply_statements(conn, statements)
                        except Exception as exc:
                            raise _StatementFailed() from exc
                except _StatementFailed:
                    raise
                except Exception as exc:
                    count, parked = await record_failure(
                        conn, name, event, f"{type(exc).__name__}: {exc}", max_failures
                    )
                    if not parked:
                        log.warning(
                            "projection %s: event %s (%s) failed %d time(s): %s",
                            name, event.position, event.type, count, exc,
                        )  # fmt: skip
                        retry_at = now + self.settings.RetryFailedAfter
                        break
                    log.error(
                        "projection %s: event %s (%s) parked after %d failures: %s",
                        name, event.position, event.type, count, exc,
                    )  # fmt: skip
                else:
                    if retrying:
                        await clear_failure(conn, name, event.position)
                retrying = False
                position = event.position
                handled += 1
            else:
                if len(batch) < limit:
                    # Every position up to `head` is final (see EventStore), so
                    # events of other types below it never need reading again.
                    position = head
            await set_position(conn, name, position, retry_at=retry_at)
        self._retry_at[name] = retry_at
        more = retry_at is None and len(batch) == limit
        return handled, more


class _StatementFailed(Exception):
    """A statement failed on the database in a batch run without savepoints."""
