"""Runs setup steps in order, records each run as events, survives being killed.

For each step, in order:

1. Read its record: the events of aggregate `system`/<step name> (instance
   ''), the last one being `system.migration.started`, `.done` or `.failed`.
2. Done: skip it, unless it is repeatable and `rerun_when` says it is due.
3. Started by a process whose lease is live: wait (poll) until it ends.
   Started, but the lease expired (the process was SIGKILLed or its node
   lost): record it `failed` ("taken over") and go on as for a failed step.
4. Never run, failed, or due again: push `started` and take the lease in one
   transaction. The push expects the step's last sequence, so of several
   processes only one starts it; the others go back to 1 and wait.
5. Run it while a heartbeat renews the lease; push `done` (with the step's
   info) or `failed` (with the error) and release the lease, again in one
   transaction and only if this process still owns the step.

Cancellation (SIGTERM/SIGINT in the CLI) cancels the running step, records it
`failed` with the reason and re-raises: the next `donjon setup` resumes it.
A step whose lease was taken over while it ran is cancelled and its outcome
is not recorded: the process that took it over runs it again. Steps must
therefore be safe to run again after stopping at any await.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from donjon.core.errors import ConcurrencyError, SetupError
from donjon.core.events import Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.setup.lease import (
    Lease,
    database_now,
    get_lease,
    release_lease,
    renew_lease,
    take_lease,
)
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

# How long recording a cancelled step as failed may take before the process
# gives up and leaves the step to lease expiry.
RECORD_TIMEOUT = 10.0
# How often "waiting for step X" is logged while another process runs it.
WAIT_LOG_EVERY = 10.0


@dataclass
class StepRecord:
    """What the store says about one step: its status and the last event's details."""

    name: str
    status: str
    sequence: int
    error: str = ""
    holder: str = ""
    changed_at: datetime | None = None


@dataclass
class CleanupReport:
    """What `SetupRunner.cleanup` did: steps recorded failed, and steps it left
    alone because a live process holds their lease."""

    cleaned: list[str] = field(default_factory=list)
    running: list[Lease] = field(default_factory=list)


class StepLost(Exception):
    """This process no longer owns the step it runs (taken over or cleaned up)."""


def holder_id() -> str:
    """A name for this runner, unique across processes and runs: host, pid and a
    random part (a restarted container may reuse both host name and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SetupRunner:
    """Runs the setup steps of one runtime; see the module docstring."""

    def __init__(
        self, runtime: Runtime, *, holder: str | None = None, poll: float | None = None
    ) -> None:
        self.runtime = runtime
        self.holder = holder or holder_id()
        self.lease = runtime.settings.Setup.LeaseDuration
        self.poll = poll if poll is not None else min(1.0, self.lease.total_seconds() / 4)
        # Set by the CLI's signal handler, so a cancelled step records why.
        self.cancel_reason = "canceled"

    async def record(self, name: str) -> StepRecord:
        """The step's current record (status NEVER when it has no events)."""
        return _record(
            name, await self.runtime.store.aggregate_events(SYSTEM_INSTANCE, SYSTEM_AGGREGATE, name)
        )

    async def run(self, migrations: Sequence[Migration] | None = None) -> list[str]:
        """Run every due step in order; return the names of the steps this call executed.

        Raises SetupError when a step fails (it is recorded failed first) or
        two steps share a name; CancelledError when cancelled (the running
        step is recorded failed first).
        """
        steps = list(migrations if migrations is not None else self.runtime.migrations())
        names = [m.name for m in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SetupError(
                f"two setup steps are named {duplicates[0]!r}; step names must be unique"
            )
        ran = []
        for migration in steps:
            if await self.run_step(migration):
                ran.append(migration.name)
        log.info("setup completed (%d step(s) run, %d up to date)", len(ran), len(steps) - len(ran))
        if ran:
            await self.runtime.db.analyze()  # rebuilt tables: fresh planner statistics
        return ran

    async def run_step(self, migration: Migration) -> bool:
        """Run `migration` if it is due (see the module docstring); True when this call ran it."""
        name = migration.name
        logged_wait = -WAIT_LOG_EVERY
        while True:
            rec = await self.record(name)
            if rec.status == DONE:
                if migration.rerun_when is None or not await migration.rerun_when(self.runtime):
                    return False
            elif rec.status == STARTED:
                async with self.runtime.db.read() as conn:
                    lease = await get_lease(conn, name)
                    now = await database_now(conn)
                if lease is not None and lease.holder != self.holder and not lease.expired(now):
                    if time.monotonic() - logged_wait >= WAIT_LOG_EVERY:
                        log.info(
                            "step %s is running in %s (lease until %s); waiting",
                            name,
                            lease.holder,
                            lease.expires_at.isoformat(timespec="seconds"),
                        )
                        logged_wait = time.monotonic()
                    await asyncio.sleep(self.poll)
                    continue
                if lease is not None:
                    expired_at = lease.expires_at.isoformat(timespec="seconds")
                    reason = f"lease of {lease.holder} expired at {expired_at}"
                else:
                    reason = f"no lease held by {rec.holder or 'its process'}"
                log.warning("step %s was left started (%s); taking it over", name, reason)
                # Of several processes taking over, one records the failure;
                # the others see it on their next look and race to start.
                await self._push(
                    name,
                    MigrationFailed(name, f"{reason}; taken over by {self.holder}"),
                    rec.sequence,
                )
                continue
            if await self._start(name, rec.sequence):
                await self._execute(migration)
                return True

    async def _start(self, name: str, sequence: int) -> bool:
        """Push `started` after `sequence` and take the lease; False when another process won."""
        try:
            async with self.runtime.db.write() as conn:
                await self.runtime.store.push_in(
                    conn,
                    [_changes(name, MigrationStarted(name, self.holder), sequence)],
                    creator=self.holder,
                )
                await take_lease(conn, name, self.holder, self.lease)
        except ConcurrencyError:
            return False
        except asyncio.CancelledError:
            # The commit may have happened before the cancellation arrived.
            reason = f"{self.cancel_reason} as it started"
            if await self._record_after_cancel(name, MigrationFailed(name, reason)):
                log.error("step %s %s; recorded it failed", name, reason)
            raise
        log.info("step %s started", name)
        return True

    async def _execute(self, migration: Migration) -> None:
        name = migration.name
        ctx = StepContext(self.runtime, name, _progress_logger(name))
        step = asyncio.create_task(migration.execute(ctx), name=f"setup step {name}")
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(name, step, lost), name=f"lease of {name}")
        try:
            info = await step
        except asyncio.CancelledError:
            await _stop(heartbeat)
            if lost.is_set():
                raise SetupError(_lost_message(name)) from None
            reason = self.cancel_reason
            if await self._record_after_cancel(
                name, MigrationFailed(name, f"{reason} while running")
            ):
                log.error("step %s %s; recorded it failed: the next setup resumes it", name, reason)
            raise
        except Exception as exc:
            await _stop(heartbeat)
            if lost.is_set():
                raise SetupError(_lost_message(name)) from exc
            error = f"{type(exc).__name__}: {exc}"
            await self._end(name, MigrationFailed(name, error))
            log.error("step %s failed: %s; the next setup runs it again", name, error)
            raise SetupError(f"step {name} failed: {error}") from exc
        await _stop(heartbeat)
        await self._end(name, MigrationDone(name, info or {}))
        log.info("step %s done", name)

    async def _end(self, name: str, event: Event) -> None:
        """Record `event` ending this process's run of the step, even when this task
        is cancelled meanwhile (then CancelledError follows). Raises SetupError when
        the step is no longer this process's."""
        try:
            await self._finish(name, event)
        except StepLost:
            raise SetupError(_lost_message(name)) from None
        except asyncio.CancelledError:
            await self._record_after_cancel(name, event)
            raise

    async def _record_after_cancel(self, name: str, event: Event) -> bool:
        """Record `event` ending this process's run of step `name` although this task
        was cancelled. True when recorded; False when there was nothing of this
        process's to end, or the database did not answer within RECORD_TIMEOUT (the
        step is then taken over once its lease expires)."""
        try:
            async with asyncio.timeout(RECORD_TIMEOUT):
                await self._finish(name, event)
        except StepLost:
            return False
        except Exception as exc:  # TimeoutError, the database away
            log.error(
                "step %s: recording %s did not work (%s); the next setup takes the step over"
                " once its lease expires",
                name,
                event.TYPE,
                exc,
            )
            return False
        return True

    async def _finish(self, name: str, event: Event) -> None:
        """Push `event` ending this process's run of the step and release the lease.

        Raises StepLost, writing nothing, when the step's last event is not
        this process's `started` (another process took it over, or a cleanup
        marked it failed).
        """
        try:
            async with self.runtime.db.write() as conn:
                events = await self.runtime.store.aggregate_events(
                    SYSTEM_INSTANCE, SYSTEM_AGGREGATE, name, conn=conn
                )
                rec = _record(name, events)
                if rec.status != STARTED or rec.holder != self.holder:
                    raise StepLost(name)
                await self.runtime.store.push_in(
                    conn, [_changes(name, event, rec.sequence)], creator=self.holder
                )
                await release_lease(conn, name, self.holder)
        except ConcurrencyError:
            raise StepLost(name) from None

    async def _heartbeat(self, name: str, step: asyncio.Task[Any], lost: asyncio.Event) -> None:
        """Renew the lease every third of LeaseDuration; cancel `step` when it was lost."""
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self.runtime.db.write() as conn:
                    held = await renew_lease(conn, name, self.holder, self.lease)
            except Exception as exc:  # the database may be briefly away; the lease outlasts a blip
                log.warning("step %s: renewing the lease failed: %s", name, exc)
                continue
            if not held:
                log.error("step %s: another process took over its lease; stopping it here", name)
                lost.set()
                step.cancel()
                return

    async def _push(self, name: str, event: Event, sequence: int) -> bool:
        try:
            await self.runtime.store.push(_changes(name, event, sequence), creator=self.holder)
        except ConcurrencyError:
            return False
        return True

    async def cleanup(self, *, force: bool = False) -> CleanupReport:
        """Record every step left `started` as failed (`donjon setup cleanup`), so the
        next setup runs it again without waiting for its lease to expire.

        A step whose lease is live is left alone (its process may be running it)
        unless `force`; then that process stops the step at its next heartbeat.
        """
        report = CleanupReport()
        for migration in self.runtime.migrations():
            name = migration.name
            rec = await self.record(name)
            if rec.status != STARTED:
                continue
            async with self.runtime.db.read() as conn:
                lease = await get_lease(conn, name)
                now = await database_now(conn)
            if lease is not None and not lease.expired(now) and not force:
                report.running.append(lease)
                continue
            if await self._push(
                name, MigrationFailed(name, "canceled by setup cleanup"), rec.sequence
            ):
                if lease is not None:
                    async with self.runtime.db.write() as conn:
                        await release_lease(conn, name, lease.holder)
                log.info("step %s was left started; recorded it failed", name)
                report.cleaned.append(name)
        return report

    async def pending(self) -> list[str]:
        """Steps that a `donjon setup` would run now."""
        due = []
        for migration in self.runtime.migrations():
            rec = await self.record(migration.name)
            if rec.status != DONE or (
                migration.rerun_when and await migration.rerun_when(self.runtime)
            ):
                due.append(migration.name)
        return due


def _record(name: str, events: Sequence[StoredEvent]) -> StepRecord:
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


def _changes(name: str, event: Event, sequence: int) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(SYSTEM_AGGREGATE, name, SYSTEM_INSTANCE, SYSTEM_INSTANCE),
        [event],
        expected_sequence=sequence,
    )


def _lost_message(name: str) -> str:
    return (
        f"step {name}: another process took it over while it ran (its lease was not renewed"
        " in time, or `donjon setup cleanup --force` ran); that process runs it again"
    )


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has finished (its errors are its own to log)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    except Exception:  # noqa: BLE001
        pass


def _progress_logger(name: str) -> Callable[[int, int], None]:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 5 and done < total:
            return
        last[0] = now
        pct = 100.0 * done / total if total else 100.0
        log.info("step %s: %.0f%% (%d of %d)", name, pct, done, total, extra={"step": name})

    return report
