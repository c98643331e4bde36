"""Projection bookkeeping: version, status and position per projection, and failed events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import StoredEvent
from donjon.core.eventstore.schema import projection_failures, projection_states

ACTIVE = "active"
REBUILDING = "rebuilding"


@dataclass
class ProjectionState:
    name: str
    version: int
    status: str
    position: int
    updated_at: datetime
    retry_at: datetime | None = None


async def get_state(
    conn: AsyncConnection, name: str, *, lock: bool = False
) -> ProjectionState | None:
    """The projection's state; with `lock`, its row is locked (PostgreSQL: or None when
    another process holds it, so two processes never handle the same events)."""
    stmt = select(projection_states).where(projection_states.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row = (await conn.execute(stmt)).first()
    return ProjectionState(**row._mapping) if row else None


async def all_states(conn: AsyncConnection) -> dict[str, ProjectionState]:
    rows = await conn.execute(select(projection_states))
    return {r.name: ProjectionState(**r._mapping) for r in rows}


async def put_state(conn: AsyncConnection, state: ProjectionState) -> None:
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


async def failure_counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(projection_failures.c.projection, func.count())
        .where(projection_failures.c.parked.is_(True))
        .group_by(projection_failures.c.projection)
    )
    return {name: count for name, count in rows}
