"""What the hot paths read of targets and executions, kept in process memory.

Function executions (on every token and userinfo answer) and request/response
executions (on every management API call) need the targets bound to a few
conditions. Reading them from the read models costs two queries per call;
instead each process keeps, per instance, a snapshot of all its executions
and targets (a few rows each), loaded in one read transaction on first use.

A snapshot is dropped:

- at once when this process pushes an event that changes targets or
  executions (`target.*`, `execution.*`, `instance.removed`): the event
  store tells its listeners after the commit, so the next call reloads and a
  change made through this process's API applies to the very next call;
- after `Actions.ExecutionCacheTTL` (1s by default) in any case, which is
  how a change made through another donjon process on the same database
  reaches this one. A TTL costs no query on the hot path; a position check
  would cost one per call, as much as the reads it saves on SQLite.

A load that overlaps an invalidation is not kept (a generation counter), so
a stale snapshot never outlives the event that made it stale. Calls that
miss at once each load (a few small reads), which only happens after a change. Event
executions do not use this cache: the outbox reads the executions as of each
event's position, durably.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from donjon.actions import executions, targets
from donjon.core.events import StoredEvent

if TYPE_CHECKING:
    from donjon.core.database import Database

CHANGING_PREFIXES = (f"{targets.AGGREGATE}.", f"{executions.AGGREGATE}.", "instance.removed")


@dataclass(frozen=True)
class Snapshot:
    """One instance's executions (condition id -> target ids, in order) and targets."""

    bound: dict[str, list[str]]
    targets: dict[str, targets.Target]
    loaded_at: float

    def targets_for(self, condition_ids: Iterable[str]) -> list[targets.Target]:
        """The targets bound to these conditions, most specific condition first, each once."""
        out: list[targets.Target] = []
        seen: set[str] = set()
        for cid in condition_ids:
            for tid in self.bound.get(cid, ()):
                target = self.targets.get(tid)
                if target is not None and tid not in seen:
                    seen.add(tid)
                    out.append(target)
        return out


@dataclass
class ExecutionCache:
    """Per-instance snapshots of one process, invalidated by pushes and a TTL."""

    db: Database
    ttl: float
    _snapshots: dict[str, Snapshot] = field(default_factory=dict)
    _generation: dict[str, int] = field(default_factory=dict)
    loads: int = 0  # how many times a snapshot was read from the database

    def notify(self, stored: list[StoredEvent]) -> None:
        """A store listener: drop the snapshots of instances whose targets or executions changed."""
        for event in stored:
            if event.type.startswith(CHANGING_PREFIXES):
                self.invalidate(event.instance_id)

    def invalidate(self, instance_id: str) -> None:
        self._snapshots.pop(instance_id, None)
        self._generation[instance_id] = self._generation.get(instance_id, 0) + 1

    async def targets_for(
        self, instance_id: str, condition_ids: Iterable[str]
    ) -> list[targets.Target]:
        return (await self.snapshot(instance_id)).targets_for(condition_ids)

    async def snapshot(self, instance_id: str) -> Snapshot:
        found = self._snapshots.get(instance_id)
        if found is not None and time.monotonic() - found.loaded_at < self.ttl:
            return found
        generation = self._generation.get(instance_id, 0)
        snapshot = await self._load(instance_id)
        if self._generation.get(instance_id, 0) == generation:
            self._snapshots[instance_id] = snapshot
        return snapshot

    async def _load(self, instance_id: str) -> Snapshot:
        self.loads += 1
        started = time.monotonic()
        ex, et = executions.executions_table, executions.execution_targets_table
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(et.c.execution_id, et.c.target_id)
                .join(ex, (ex.c.instance_id == et.c.instance_id) & (ex.c.id == et.c.execution_id))
                .where(et.c.instance_id == instance_id)
                .order_by(et.c.execution_id, et.c.position)
            )
            bound: dict[str, list[str]] = {}
            for r in rows:
                bound.setdefault(r.execution_id, []).append(r.target_id)
            found: dict[str, targets.Target] = {}
            if bound:
                t = targets.targets_table
                found = {
                    r.id: targets.Target.from_row(r)
                    for r in await conn.execute(select(t).where(t.c.instance_id == instance_id))
                }
        return Snapshot(bound, found, started)
