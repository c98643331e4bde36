"""Leases on setup steps: who runs a step, until when.

A step's process renews its lease every third of Setup.LeaseDuration. A lease
that expired belongs to a process that died (SIGKILL, lost node): the next
`donjon setup` takes the step over, no operator needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.eventstore.schema import setup_leases


@dataclass(frozen=True)
class Lease:
    step: str
    holder: str
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))


async def get_lease(conn: AsyncConnection, step: str) -> Lease | None:
    row = (await conn.execute(select(setup_leases).where(setup_leases.c.step == step))).first()
    return Lease(row.step, row.holder, row.expires_at) if row else None


async def take_lease(conn: AsyncConnection, step: str, holder: str, duration: timedelta) -> None:
    values = {"step": step, "holder": holder, "expires_at": datetime.now(UTC) + duration}
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(setup_leases)
    await conn.execute(
        ins.values(values).on_conflict_do_update(
            index_elements=[setup_leases.c.step],
            set_={"holder": holder, "expires_at": values["expires_at"]},
        )
    )


async def renew_lease(conn: AsyncConnection, step: str, holder: str, duration: timedelta) -> bool:
    """Extend the lease; False when another process holds it now."""
    result = await conn.execute(
        update(setup_leases)
        .where(setup_leases.c.step == step, setup_leases.c.holder == holder)
        .values(expires_at=datetime.now(UTC) + duration)
    )
    return result.rowcount == 1


async def release_lease(conn: AsyncConnection, step: str, holder: str) -> None:
    await conn.execute(
        delete(setup_leases).where(setup_leases.c.step == step, setup_leases.c.holder == holder)
    )
