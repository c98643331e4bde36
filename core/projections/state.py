"""Projection bookkeeping: version, status and position per projection, and failed events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import StoredEvent
from donjon.core.eventstore.schema import projection_failures, projection_states

ACTIVE = "active"
REBUILDING = "rebuilding"


@dataclass
class ProjectionState:
    """One row of `projection_states`.

    `position` is the last store position whose events are in the tables (for
    a rebuilding projection: the replay's progress); `retry_at`, when set,
    holds an async projection back until a failed event may be tried again.
    """

    name: str
    version: int
    status: str
    position: int
    updated_at: datetime | None = None  # set by put_state/set_position
    retry_at: datetime | None = None


async def get_state(
    conn: AsyncConnection, name: str, *, lock: bool = False, skip_locked: bool = False
) -> ProjectionState | None:
    """The projection's state, or None when it has none.

    With `lock` its row stays locked until the transaction ends (PostgreSQL:
    FOR UPDATE, waiting for another holder; with `skip_locked` too, None is
    returned at once when another process holds it, so two processes never
    handle the same events). SQLite needs no row lock: a write transaction
    already holds the database's write lock.
    """
    stmt = select(projection_states).where(projection_states.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    row = (await conn.execute(stmt)).first()
    return ProjectionState(**row._mapping) if row else None


async def states_of(conn: AsyncConnection, names: list[str]) -> dict[str, ProjectionState]:
    """The states of the named projections that have one."""
    rows = await conn.execute(select(projection_states).where(projection_states.c.name.in_(names)))
    return {r.name: ProjectionState(**r._mapping) for r in rows}


async def all_states(conn: AsyncConnection) -> dict[str, ProjectionState]:
    rows = await conn.execute(select(projection_states))
    return {r.name: ProjectionState(**r._mapping) for r in rows}


async def put_state(conn: AsyncConnection, state: ProjectionState) -> None:
    """Insert or replace the projection's state row."""
    values = {
        "name": state.name,
        "version": state.version,
        "status": state.status,
        "position": state.position,
        "updated_at": datetime.now(UTC),
        "retry_at": state.retry_at,
    }
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(projection_states)
    await conn.execute(
        ins.values(values).on_conflict_do_update(
            index_elements=[projection_states.c.name],
            set_={k: v for k, v in values.items() if k != "name"},
        )
    )


async def set_position(
    conn: AsyncConnection, name: str, position: int, *, retry_at: datetime | None = None
) -> None:
    """Move the projection to `position` (and set or clear its retry time)."""
    await conn.execute(
        update(projection_states)
        .where(projection_states.c.name == name)
        .values(position=position, updated_at=datetime.now(UTC), retry_at=retry_at)
    )


async def record_failure(
    conn: AsyncConnection, projection: str, event: StoredEvent, error: str, max_failures: int
) -> tuple[int, bool]:
    """Count one more failure of `event`; return the count and whether it is now parked."""
    row = (
        await conn.execute(
            select(projection_failures.c.failure_count).where(
                projection_failures.c.projection == projection,
                projection_failures.c.position == event.position,
            )
        )
    ).first()
    count = (row[0] if row else 0) + 1
    parked = count >= max_failures
    values = {
        "projection": projection,
        "position": event.position,
        "event_type": event.type,
        "failure_count": count,
        "error": error[:4000],
        "last_failed": datetime.now(UTC),
        "parked": parked,
    }
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(projection_failures)
    await conn.execute(
        ins.values(values).on_conflict_do_update(
            index_elements=[projection_failures.c.projection, projection_failures.c.position],
            set_={k: v for k, v in values.items() if k not in ("projection", "position")},
        )
    )
    return count, parked


async def clear_failure(conn: AsyncConnection, projection: str, position: int) -> None:
    """Forget the failures of an event that was handled after all."""
    await conn.execute(
        delete(projection_failures).where(
            projection_failures.c.projection == projection,
            projection_failures.c.position == position,
        )
    )


async def clear_failures(conn: AsyncConnection, projection: str) -> None:
    """Forget every failed and parked event of the projection (a rebuild starts over)."""
    await conn.execute(
        delete(projection_failures).where(projection_failures.c.projection == projection)
    )


async def failure_counts(conn: AsyncConnection) -> dict[str, int]:
    """Parked events per projection (projections with none are absent)."""
    rows = await conn.execute(
        select(projection_failures.c.projection, func.count())
        .where(projection_failures.c.parked.is_(True))
        .group_by(projection_failures.c.projection)
    )
    return {name: count for name, count in rows}


async def list_failures(
    conn: AsyncConnection, projection: str | None = None
) -> list[dict[str, Any]]:
    """Failed and parked events, newest failure first (`donjon projections failures`)."""
    stmt = select(projection_failures).order_by(projection_failures.c.last_failed.desc())
    if projection is not None:
        stmt = stmt.where(projection_failures.c.projection == projection)
    return [dict(r._mapping) for r in await conn.execute(stmt)]
