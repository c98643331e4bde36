"""Single-use assertion ids (the `jti` of RFC 7523 assertions).

A `jti` is remembered per issuer until the assertion it came with expires;
presenting it again before then is a replay. The table is bookkeeping, not
domain state (like the core's setup leases): an insert that finds the row
taken is the replay. Rows past their expiry are deleted now and then by the
inserts themselves.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, Table, Text, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from donjon.core.database import Database
from donjon.core.eventstore.schema import UTCDateTime

#: The plugin's own tables (not read models: a projection rebuild leaves them alone).
oidc_metadata = MetaData()

used_assertions = Table(
    "oidc_used_assertions",
    oidc_metadata,
    Column("instance_id", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("jti", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("instance_id", "issuer", "jti"),
)

#: One insert in this many also deletes expired rows.
PURGE_ONE_IN = 100
MAX_JTI = 256


async def first_use(
    db: Database, instance_id: str, issuer: str, jti: str, expires_at: datetime
) -> bool:
    """Record `jti` of `issuer`; False when it was recorded before (a replay)."""
    async with db.write() as conn:
        ins = (pg_insert if db.is_postgres else sqlite_insert)(used_assertions)
        claimed = await conn.execute(
            ins.values(instance_id=instance_id, issuer=issuer, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing()
            .returning(used_assertions.c.jti)
        )
        fresh = claimed.first() is not None
        if random.randrange(PURGE_ONE_IN) == 0:
            await conn.execute(
                delete(used_assertions).where(used_assertions.c.expires_at < datetime.now(UTC))
            )
    return fresh


async def create_tables(db: Database) -> None:
    """Create the plugin's tables when missing (the `oidc.tables` setup step)."""
    async with db.write() as conn:
        await conn.run_sync(oidc_metadata.create_all, checkfirst=True)
