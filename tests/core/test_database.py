from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from donjon.core.database import Database


def test_sqlite_writers_queue_in_every_event_loop_of_a_process(tmp_path: Path) -> None:
    """start-from-setup runs setup and the server in two loops of one process."""
    db = Database.sqlite(tmp_path / "x.db")

    async def contend() -> None:
        async def write(n: int) -> None:
            async with db.write() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
                await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await asyncio.sleep(0.01)

        await asyncio.gather(*(write(n) for n in range(3)))
        await db.dispose()

    asyncio.run(contend())
    asyncio.run(contend())

    async def count() -> int:
        async with db.read() as conn:
            n = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await db.dispose()
        return n

    assert asyncio.run(count()) == 6
