"""Purging expired protocol state: the periodic job that keeps the OIDC tables small.

Auth requests (with their codes), device authorizations, access tokens,
refresh tokens and used assertion ids are rows that grow with every login
and every token; once expired they answer nothing but "expired". The job
deletes them once they have been expired for `PurgeRetention`:

| table | a row is expired when |
|---|---|
| `oidc_auth_requests` | its login deadline and its code's expiry (if any) have passed |
| `oidc_device_auths` | its device code has expired |
| `oidc_access_tokens` | the token has expired |
| `oidc_refresh_tokens` | its idle or absolute expiry has passed |
| `oidc_used_assertions` | the assertion its jti came with has expired |

Rules:

- *batch-limited*: each statement deletes at most `PurgeBatchSize` rows (by
  primary key, through a sub-select), each in its own short transaction, so
  the job never holds locks long nor builds a huge transaction.
- *safe with several processes*: every process runs the job every
  `PurgeInterval` (with jitter). On PostgreSQL a batch first takes a
  transaction-level advisory lock with `pg_try_advisory_xact_lock`; a
  process that does not get it leaves that round to the holder. On SQLite
  write transactions are serialised anyway. A row deleted twice is deleted
  once: nothing can go wrong, only work is saved.
- *rebuilds bring nothing back as valid*: the rows are read models; a
  rebuild replays their events and puts the expired rows back with their
  original expiry, which every lookup checks (`lookup.active_token`,
  `refresh_token`, `authorization_code`, `device_code`, `auth_requests`), so
  they are refused as expired and deleted again by the next round. Events
  are never deleted: the audit trail keeps them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, or_, select, tuple_

from donjon.plugins.oidc.auth_request_events import auth_requests_table
from donjon.plugins.oidc.device_events import device_auths_table
from donjon.plugins.oidc.replay import used_assertions
from donjon.plugins.oidc.tokens.events import access_tokens_table
from donjon.plugins.oidc.tokens.refresh import refresh_tokens_table

if TYPE_CHECKING:
    from donjon.core.database import Database
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of the purge ("oidcpurg" as an int64).
PURGE_LOCK_KEY = int.from_bytes(b"oidcpurg", "big") & 0x7FFF_FFFF_FFFF_FFFF
#: Batches one table gets in one round at most (the rest waits for the next round).
MAX_BATCHES_PER_ROUND = 100


@dataclass(frozen=True, slots=True)
class PurgeTarget:
    table: Table
    #: The condition of rows expired before the cutoff.
    expired: Callable[[Table, datetime], Any]


TARGETS: tuple[PurgeTarget, ...] = (
    PurgeTarget(
        auth_requests_table,
        lambda t, cutoff: (
            (t.c.expires_at < cutoff)
            & or_(t.c.code_expires_at.is_(None), t.c.code_expires_at < cutoff)
        ),
    ),
    PurgeTarget(device_auths_table, lambda t, cutoff: t.c.expires_at < cutoff),
    PurgeTarget(access_tokens_table, lambda t, cutoff: t.c.expires_at < cutoff),
    PurgeTarget(
        refresh_tokens_table,
        lambda t, cutoff: or_(t.c.idle_expires_at < cutoff, t.c.expires_at < cutoff),
    ),
    PurgeTarget(used_assertions, lambda t, cutoff: t.c.expires_at < cutoff),
)


async def purge_batch(
    db: Database, target: PurgeTarget, cutoff: datetime, limit: int
) -> int | None:
    """Delete at most `limit` rows of `target` expired before `cutoff`: how many, or None
    when another process holds the purge lock (PostgreSQL)."""
    t = target.table
    key = tuple_(*t.primary_key.columns)
    doomed = select(*t.primary_key.columns).where(target.expired(t, cutoff)).limit(limit)
    async with db.write() as conn:
        if db.is_postgres:
            locked = await conn.execute(select(func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY)))
            if not locked.scalar_one():
                return None
        result = await conn.execute(delete(t).where(key.in_(doomed)))
    return result.rowcount


async def purge_expired(
    db: Database, *, retention: Any, batch_size: int, now: datetime | None = None
) -> dict[str, int]:
    """One round: rows deleted per table. Rows expired for less than `retention`
    (a timedelta) before `now` stay."""
    cutoff = (now or datetime.now(UTC)) - retention
    deleted: dict[str, int] = {}
    for target in TARGETS:
        total = 0
        for _ in range(MAX_BATCHES_PER_ROUND):
            count = await purge_batch(db, target, cutoff, batch_size)
            if count is None:
                break
            total += count
            if count < batch_size:
                break
        deleted[target.table.name] = total
    return deleted


async def purge_periodically(runtime: Runtime) -> None:
    """The job each process runs (started by the plugin's `on_startup`): a round every
    `PurgeInterval`, the first after a random part of it so processes do not line up."""
    from donjon.plugins.oidc.provider import provider_of

    settings = provider_of(runtime).settings
    interval = settings.PurgeInterval.total_seconds()
    await asyncio.sleep(interval * random.uniform(0.1, 1.0))
    while True:
        try:
            deleted = await purge_expired(
                runtime.db, retention=settings.PurgeRetention, batch_size=settings.PurgeBatchSize
            )
            if any(deleted.values()):
                log.info(
                    "purged expired OIDC rows: %s",
                    ", ".join(f"{name} {n}" for name, n in deleted.items() if n),
                )
        except Exception:
            # A table being rebuilt, a lost connection: the next round tries again.
            log.warning("purging expired OIDC rows failed", exc_info=True)
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))
