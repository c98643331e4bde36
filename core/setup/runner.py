"""Runs setup steps in order, records each run as events, survives being killed.

For each step: read its record (the events of aggregate `system`/<step>);
skip it when done (unless repeatable and due); wait while another live process
runs it; take it over when that process's lease expired; otherwise push
`started` (optimistic concurrency on the step's aggregate: of two processes
only one starts it) together with a lease, run it while renewing the lease,
and push `done` or `failed`.

Cancellation (SIGTERM/SIGINT in the CLI) cancels the running step, records
it `failed` with the reason and re-raises: the next `donjon setup` resumes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from donjon.core.errors import ConcurrencyError, SetupError
from donjon.core.events import Aggregate, AggregateChanges, Event
from donjon.core.setup.lease import get_lease, release_lease, renew_lease, take_lease
from donjon.core.setup.migrations import (
    SYSTEM_AGGREGATE,
    SYSTEM_INSTANCE,
    Migration,
    MigrationDone,
    MigrationFailed,
    MigrationStarted,
    StepContext,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

NEVER = "never run"
STARTED = "started"
DONE = "done"
FAILED = "failed"


@dataclass
class StepRecord:
    name: str
    status: str
    sequence: int
    error: str = ""
    holder: str = ""
    changed_at: datetime | None = None


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SetupRunner:
    def __init__(self, runtime: Runtime, *, holder: str | None = None, poll: float = 1.0) -> None:
        self.runtime = runtime
        self.holder = holder or holder_id()
        self.poll = poll
        self.lease = runtime.settings.Setup.LeaseDuration
        # Set by the CLI's signal handler, so a cancelled step records why.
        self.cancel_reason = "cancelled"

    async def record(self, name: str) -> StepRecord:
        events = await self.runtime.store.aggregate_events(SYSTEM_INSTANCE, SYSTEM_AGGREGATE, name)
        if not events:
            return StepRecord(name, NEVER, 0)
        last = events[-1]
        status = last.type.rsplit(".", 1)[-1]
        return StepRecord(
            name,
            status,
            last.sequence,
            error=last.payload.get("error", ""),
            holder=last.payload.get("holder", "") if status == STARTED else "",
            changed_at=last.created_at,
        )

    async def run(self, migrations: list[Migration] | None = None) -> list[str]:
        """Run every due step; return the names of the steps this call executed."""
        ran = []
        for migration in migrations if migrations is not None else self.runtime.migrations():
            if await self.run_step(migration):
                ran.append(migration.name)
        log.info("setup completed")
        return ran

    async def run_step(self, migration: Migration) -> bool:
        waited_since = 0.0
        while True:
            rec = await self.record(migration.name)
            if rec.status == DONE:
                if migration.rerun_when is None or not await migration.rerun_when(self.runtime):
                    return False
            elif rec.status == STARTED:
                async with self.runtime.db.read() as conn:
                    lease = await get_lease(conn, migration.name)
                if lease is not None and not lease.expired() and lease.holder != self.holder:
                    if time.monotonic() - waited_since > 10:
                        log.info(
                            "step %s is running in %s (lease until %s); waiting",
                            migration.name, lease.holder, lease.expires_at.isoformat(),
                        )
                        waited_since = time.monotonic()
                    await asyncio.sleep(self.poll)
                    continue
                reason = (
                    f"lease of {rec.holder or 'an unknown process'} expired"
                    f" at {lease.expires_at.isoformat()}" if lease else "no lease held"
                )
                log.warning("step %s was left started (%s); taking it over", migration.name, reason)
                # Of several processes taking over, one records the failure;
                # the others see it on the next look and race to start.
                await self._push(
                    migration.name,
                    MigrationFailed(migration.name, f"{reason}; taken over by {self.holder}"),
                    rec.sequence,
                )
                continue
            if await self._start(migration.name, rec.sequence):
                await self._execute(migration)
                return True

    async def _start(self, name: str, sequence: int) -> bool:
        try:
            async with self.runtime.db.write() as conn:
                await self.runtime.store.push_in(
                    conn, [_changes(name, MigrationStarted(name, self.holder), sequence)], creator=self.holder
                )
                await take_lease(conn, name, self.holder, self.lease)
        except ConcurrencyError:
            return False  # another process started it first; look again
        log.info("step %s started", name)
        return True

    async def _execute(self, migration: Migration) -> None:
        name = migration.name
        ctx = StepContext(self.runtime, name, _progress_logger(name))
        step = asyncio.create_task(migration.execute(ctx), name=f"setup step {name}")
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(name, step, lost))
        try:
            info = await step
        except asyncio.CancelledError:
            heartbeat.cancel()
            if lost.is_set():
                raise SetupError(f"step {name}: another process took over its lease") from None
            await self._finish(name, MigrationFailed(name, f"{self.cancel_reason} while running"))
            log.error("step %s %s; it is recorded failed and the next setup resumes it", name, self.cancel_reason)
            raise
        except Exception as exc:
            heartbeat.cancel()
            if lost.is_set():
                raise SetupError(f"step {name}: another process took over its lease") from exc
            await self._finish(name, MigrationFailed(name, f"{type(exc).__name__}: {exc}"))
            log.error("step %s failed: %s", name, exc)
            raise SetupError(f"step {name} failed: {exc}") from exc
        heartbeat.cancel()
        await self._finish(name, MigrationDone(name, info or {}))
        log.info("step %s done", name)

    async def _finish(self, name: str, event: Event) -> None:
        rec = await self.record(name)
        async with self.runtime.db.write() as conn:
            await self.runtime.store.push_in(conn, [_changes(name, event, rec.sequence)], creator=self.holder)
            await release_lease(conn, name, self.holder)

    async def _heartbeat(self, name: str, step: asyncio.Task[Any], lost: asyncio.Event) -> None:
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self.runtime.db.write() as conn:
                    held = await renew_lease(conn, name, self.holder, self.lease)
            except Exception as exc:  # the database may be briefly away; the lease is long
                log.warning("step %s: renewing the lease failed: %s", name, exc)
                continue
            if not held:
                log.error("step %s: lease lost to another process; stopping", name)
                lost.set()
                step.cancel()
                return

    async def _push(self, name: str, event: Event, sequence: int) -> bool:
        try:
            await self.runtime.store.push(_changes(name, event, sequence), creator=self.holder)
        except ConcurrencyError:
            return False
        return True

    async def cleanup(self) -> list[str]:
        """Record every step left `started` as failed (what `donjon setup cleanup` does)."""
        cleaned = []
        for migration in self.runtime.migrations():
            rec = await self.record(migration.name)
            if rec.status != STARTED:
                continue
            if await self._push(migration.name, MigrationFailed(migration.name, "canceled by setup cleanup"), rec.sequence):
                async with self.runtime.db.write() as conn:
                    lease = await get_lease(conn, migration.name)
                    if lease:
                        await release_lease(conn, migration.name, lease.holder)
                cleaned.append(migration.name)
        return cleaned

    async def pending(self) -> list[str]:
        """Steps that a `donjon setup` would run now."""
        due = []
        for migration in self.runtime.migrations():
            rec = await self.record(migration.name)
            if rec.status != DONE or (migration.rerun_when and await migration.rerun_when(self.runtime)):
                due.append(migration.name)
        return due


def _changes(name: str, event: Event, sequence: int) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(SYSTEM_AGGREGATE, name, SYSTEM_INSTANCE, SYSTEM_INSTANCE), [event], expected_sequence=sequence
    )


def _progress_logger(name: str):  # type: ignore[no-untyped-def]
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 5 and done < total:
            return
        last[0] = now
        pct = 100.0 * done / total if total else 100.0
        log.info("step %s: %.0f%% (%d of %d)", name, pct, done, total, extra={"step": name})

    return report
