"""Two OS processes run the same async projection on one PostgreSQL: each event once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from donjon.core.eventstore.schema import projection_failures
from tests.conftest import make_settings, postgres_database
from tests.core.test_projections_support import (
    CountingProjection,
    NoteAdded,
    bare_store,
    build,
    counter_table,
    handled_table,
    note,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PUSHES, EVENTS_PER_PUSH, PUSHERS = 100, 20, 4
EVENTS = PUSHES * EVENTS_PER_PUSH

# The child: a real ProjectionRunner, woken only by RequeueEvery (the pushes
# happen in another process), until the counter shows every event.
CHILD = """
import asyncio, json, sys
from sqlalchemy import select
from donjon.core.database import Database
from donjon.core.eventstore.store import EventStore
from donjon.core.projections.runner import ProjectionRunner
from tests.conftest import make_settings, postgres_database
from tests.core.test_projections_support import CountingProjection, counter_table, note_registry

async def main(dsn: str, name: str, expected: int) -> None:
    settings = make_settings(
        postgres_database(dsn), Projections={"RequeueEvery": "10ms", "BulkLimit": 50}
    )
    db = Database.from_settings(settings.Database)
    store = EventStore(db, note_registry())
    runner = ProjectionRunner(db, store, [CountingProjection(name)], settings.Projections)
    task = asyncio.create_task(runner.run())
    print("ready", flush=True)
    try:
        for _ in range(1200):
            async with db.read() as conn:
                count = (await conn.execute(select(counter_table.c["count"]))).scalar_one()
            if count >= expected or task.done():
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()
    print(json.dumps({"counter": count}), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def spawn(dsn: str, name: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, dsn, name, str(EVENTS),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_ready(child: asyncio.subprocess.Process) -> None:
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
    if line.strip() != b"ready":
        _, err = await child.communicate()
        pytest.fail(f"a child did not start: {line!r} {err.decode()[-2000:]}")


async def test_two_processes_handle_every_event_exactly_once(pg_dsn: str) -> None:
    settings = make_settings(postgres_database(pg_dsn))
    async with bare_store(settings) as (db, store):
        await build(db, store, CountingProjection())
        async with db.write() as conn:
            await conn.execute(insert(counter_table).values(id=1, count=0))
        children = [await spawn(pg_dsn, name) for name in ("first", "second")]
        try:
            await asyncio.gather(*(wait_ready(child) for child in children))

            async def pusher(k: int) -> None:
                for i in range(k, PUSHES, PUSHERS):
                    await store.push(
                        note(f"n{i}", *(NoteAdded(f"t{i}.{j}") for j in range(EVENTS_PER_PUSH))),
                        creator="test",
                    )

            await asyncio.gather(*(pusher(k) for k in range(PUSHERS)))
            outputs: list[dict[str, Any]] = []
            for child in children:
                out, err = await asyncio.wait_for(child.communicate(), timeout=60)
                assert child.returncode == 0, err.decode()[-2000:]
                outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
        finally:
            for child in children:
                if child.returncode is None:
                    child.kill()
                    await child.wait()

        async with db.read() as conn:
            rows = (
                await conn.execute(select(handled_table.c.position, handled_table.c.handler))
            ).all()
            counter = (await conn.execute(select(counter_table.c["count"]))).scalar_one()
            failures = (
                await conn.execute(select(func.count()).select_from(projection_failures))
            ).scalar_one()
        assert sorted(position for position, _ in rows) == list(range(1, EVENTS + 1))
        assert counter == EVENTS  # an event handled twice would count twice
        assert failures == 0
        by_handler = {name: sum(1 for _, h in rows if h == name) for name in ("first", "second")}
        assert all(by_handler.values()), f"both processes should have taken batches: {by_handler}"
        assert outputs == [{"counter": EVENTS}, {"counter": EVENTS}]
