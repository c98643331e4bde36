"""Leases on setup steps: who runs a step, until when.

The process running a step renews its lease every third of
Setup.LeaseDuration. A lease that expired belongs to a process that died
(SIGKILL, lost node): the next `donjon setup` takes the step over, no
operator needed.

Times come from the database's clock on PostgreSQL, so processes on hosts
whose clocks disagree still agree on when a lease expires. SQLite is one
file on one host: its processes share the host's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.eventstore.schema import setup_leases


@dataclass(frozen=True)
class Lease:
    step: str
    holder: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


async def database_now(conn: AsyncConnection) -> datetime:
    """The current time (UTC, aware) by the clock every process of this store shares."""
    if conn.dialect.name == "postgresql":
        now: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return now.astimezone(UTC)
    return datetime.now(UTC)


async def get_lease(conn: AsyncConnection, step: str) -> Lease | None:
    row = (await conn.execute(select(setup_leases).where(setup_leases.c.step == step))).first()
    return Lease(row.step, row.holder, row.expires_at) if row else None


async def take_lease(conn: AsyncConnection, step: str, holder: str, duration: timedelta) -> Lease:
    """Give the step's lease to `holder` for `duration`, whoever held it before."""
    expires_at = await database_now(conn) + duration
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(setup_leases)
    await conn.execute(
        ins.values(step=step, holder=holder, expires_at=expires_at).on_conflict_do_update(
            index_elements=[setup_leases.c.step],
            set_={"holder": holder, "expires_at": expires_at},
        )
    )
    return Lease(step, holder, expires_at)


async def renew_lease(conn: AsyncConnection, step: str, holder: str, duration: timedelta) -> bool:
    """Extend `holder`'s lease; False when it no longer holds it (taken over or cleaned up)."""
    expires_at = await database_now(conn) + duration
    result = await conn.execute(
        update(setup_leases)
        .where(setup_leases.c.step == step, setup_leases.c.holder == holder)
        .values(expires_at=expires_at)
    )
    return result.rowcount == 1


async def release_lease(conn: AsyncConnection, step: str, holder: str) -> None:
    await conn.execute(
        delete(setup_leases).where(setup_leases.c.step == step, setup_leases.c.holder == holder)
    )
