"""The `on_event` hook: every committed event handed to in-process plugins, durably.

Each plugin that implements `on_event` is followed like an async projection
named `on_event:<plugin>`, with its own row in `projection_states`: its
position, retries and parked events (`donjon projections list` shows it,
`donjon projections failures` its failed events). The row is made the first
time a process runs with the plugin, at the store's head then: a plugin sees
the events committed from then on, not the history before it was installed.

A batch reads the events after the position, calls the plugin's
implementation once per event in position order and awaits it, then commits
the position of the last event it accepted. The handler runs outside any
write transaction, so it may push events itself (also on SQLite, whose
write lock a held transaction would keep). Delivery is at least once: a
process that dies mid-batch leaves the position where it was, and the next
batch calls the handler again for those events (a handler deduplicates by
`event.position` when it must). A handler that raises stops its plugin's
delivery at that event; the event is tried again after
`Projections.RetryFailedAfter` and, after `MaxFailureCount` failures, parked
(recorded, and skipped).

On PostgreSQL the batch holds the state row locked (FOR UPDATE SKIP LOCKED)
from reading the position until committing the new one, so with several
donjon processes each event goes to one of them. On SQLite (one process)
the position is committed only if no one moved it meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from donjon.core.events import StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.schema import projection_states
from donjon.core.projections.follow import follow
from donjon.core.projections.state import (
    ACTIVE,
    ProjectionState,
    clear_failure,
    get_state,
    record_failure,
    set_position,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "on_event:"
VERSION = 1


@dataclass
class Subscriber:
    """One plugin's `on_event` implementation and the name of its tracked position."""

    name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]

    async def call(self, event: StoredEvent, runtime: Runtime) -> None:
        given = {"event": event, "runtime": runtime}
        result = self.function(**{a: given[a] for a in self.argnames})
        if inspect.isawaitable(result):
            await result


class EventHookRunner:
    """Delivers committed events to the `on_event` implementations of one process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.Projections
        self.subscribers = [
            Subscriber(f"{PREFIX}{impl.plugin_name}", impl.function, tuple(impl.argnames))
            for impl in runtime.pm.hook.on_event.get_hookimpls()
        ]
        self._wake = {s.name: asyncio.Event() for s in self.subscribers}
        self._retry_at: dict[str, datetime | None] = {s.name: None for s in self.subscribers}

    def notify(self, stored: list[StoredEvent]) -> None:
        """A store listener: wake every subscriber after a commit."""
        if stored:
            for wake in self._wake.values():
                wake.set()

    async def prepare(self) -> None:
        """Give each subscriber its state row, at the store's head, if it has none yet."""
        db, store = self.runtime.db, self.runtime.store
        for s in self.subscribers:
            async with db.write() as conn:
                if await get_state(conn, s.name) is not None:
                    continue
                head = await store.max_position(conn)
                insert = pg_insert if db.is_postgres else sqlite_insert
                await conn.execute(
                    insert(projection_states)
                    .values(
                        name=s.name,
                        version=VERSION,
                        status=ACTIVE,
                        position=head,
                        updated_at=datetime.now(UTC),
                    )
                    .on_conflict_do_nothing(index_elements=[projection_states.c.name])
                )

    async def run(self) -> None:
        """Follow the store for every subscriber until cancelled."""
        await self.prepare()
        async with asyncio.TaskGroup() as group:
            for s in self.subscribers:
                group.create_task(self._follow(s), name=f"on_event {s.name}")

    async def _follow(self, s: Subscriber) -> None:
        await follow(
            s.name,
            self._wake[s.name],
            lambda: self.catch_up(s),
            self.settings.RequeueEvery.total_seconds(),
            lambda: self._retry_at[s.name],
        )

    async def catch_up(self, s: Subscriber) -> int:
        """Deliver batches until the subscriber is at the head (or waits for a retry, or
        another process holds it); return the events its handler accepted."""
        handled = 0
        while True:
            count, more = await self.process_batch(s)
            handled += count
            if not more:
                return handled

    async def process_batch(self, s: Subscriber) -> tuple[int, bool]:
        """One batch: (events accepted or parked, more waiting)."""
        db, store = self.runtime.db, self.runtime.store
        limit = self.settings.bulk_limit(s.name)
        now = datetime.now(UTC)
        async with AsyncExitStack() as stack:
            if db.is_postgres:
                # The locked row is held until the new position commits: one process at a time.
                conn = await stack.enter_async_context(db.write())
                state = await get_state(conn, s.name, lock=True, skip_locked=True)
            else:
                async with db.read() as read:
                    state = await get_state(read, s.name)
            if state is None or state.status != ACTIVE:
                return 0, False
            self._retry_at[s.name] = state.retry_at
            if state.retry_at is not None and state.retry_at > now:
                return 0, False
            if db.is_postgres:
                # Up to the head only: every position below it is final (see EventStore).
                head = await store.max_position(conn)
                query = EventQuery(
                    position_after=state.position, position_at_most=head, limit=limit
                )
                batch = await store.query(query, conn=conn)
            else:
                batch = await store.query(EventQuery(position_after=state.position, limit=limit))
            outcomes: list[tuple[StoredEvent, str | None]] = []
            for event in batch:
                try:
                    await s.call(event, self.runtime)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    outcomes.append((event, f"{type(exc).__name__}: {exc}"))
                    break
                outcomes.append((event, None))
            if db.is_postgres:
                return await self._commit(conn, s, state, outcomes, len(batch), limit, now)
            async with db.write() as write:
                current = await get_state(write, s.name, lock=True)
                if current is None or current.position != state.position:
                    return 0, True  # moved by someone else meanwhile: look again
                return await self._commit(write, s, state, outcomes, len(batch), limit, now)
        return 0, False  # pragma: no cover - the block always returns

    async def _commit(
        self,
        conn: Any,
        s: Subscriber,
        state: ProjectionState,
        outcomes: list[tuple[StoredEvent, str | None]],
        read: int,
        limit: int,
        now: datetime,
    ) -> tuple[int, bool]:
        position, retry_at, handled = state.position, None, 0
        retrying = state.retry_at is not None
        for event, error in outcomes:
            if error is None:
                if retrying:
                    await clear_failure(conn, s.name, event.position)
            else:
                count, parked = await record_failure(
                    conn, s.name, event, error, self.settings.max_failure_count(s.name)
                )
                if not parked:
                    log.warning(
                        "%s: event %s (%s) failed %d time(s): %s",
                        s.name, event.position, event.type, count, error,
                    )  # fmt: skip
                    retry_at = now + self.settings.RetryFailedAfter
                    break
                log.error(
                    "%s: event %s (%s) parked after %d failures: %s",
                    s.name, event.position, event.type, count, error,
                )  # fmt: skip
            retrying = False
            position = event.position
            handled += 1
        await set_position(conn, s.name, position, retry_at=retry_at)
        self._retry_at[s.name] = retry_at
        return handled, retry_at is None and read == limit
