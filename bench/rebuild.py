"""Rebuild of a user-like projection from a large store, against the raw copy rate.

For each store: write a history of `--users` users with `--events-per-user`
events each straight into the events table (not measured), then measure

  copy     INSERT INTO events_copy SELECT * FROM events: the same rows copied
           inside the same database, into a table with the same columns and
           no index — the physical limit of moving these rows (run before and
           after the rebuild; the faster run is the reference);
  fetch    the same rows fetched into Python through the driver (sqlite3,
           asyncpg) by position window, and nothing else (no JSON decoding,
           no objects built): no rebuild written in Python can beat this;
  rebuild  donjon.core.projections.rebuild.rebuild of the bench's users
           projection (bench/userlike.py) over all those events;

and report rows or events per second, seconds, and the rebuild's (and the
fetch's) rate as a share of the copy rate. The rebuilt table is then checked
row by row against the state the history must produce.

The history: user n is added at minute n; each follow-up event comes after an
exponentially distributed delay whose mean is a tenth of the timeline, so a
user's events are spread over many rebuild batches (mostly patches of rows
written by earlier batches, as in a real store). Follow-ups are
user.changed 50 %, user.email.changed 30 %, user.locked 20 %, and a user's
last event is user.removed with probability 10 %.

The SQLite history is cached under bench/.data/ by its parameters and copied
for each run; PostgreSQL gets a fresh database per run (dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
from harness import DATA, command, machine, pg_connect_kwargs, pg_database, save, stores
from sqlalchemy import create_engine, select
from userlike import (
    EVENT_TYPES,
    INSTANCE,
    ORGS,
    UsersProjection,
    added_payload,
    at,
    changed_payload,
    email_payload,
    user_id,
    users_table,
)

from donjon.core.database import Database, json_dumps
from donjon.core.events import EventRegistry
from donjon.core.eventstore.schema import events, metadata
from donjon.core.eventstore.store import EventStore
from donjon.core.projections.rebuild import rebuild

GENERATOR_VERSION = 1  # bump when the history's shape changes (invalidates the cache)
MINUTE_US = 60_000_000
CREATOR = "bench"

# (time in µs, user number, sequence, event type, version); sorted by time, the history.
Planned = tuple[int, int, int, str, int]


def plan(users: int, per_user: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    mean_delay = users * MINUTE_US / 10
    planned: list[Planned] = []
    for n in range(users):
        t = n * MINUTE_US + rng.randrange(MINUTE_US)
        planned.append((t, n, 1, "user.added", 0))
        for seq in range(2, per_user + 1):
            t += 1 + int(rng.expovariate(1 / mean_delay))
            r = rng.random()
            if seq == per_user and r < 0.10:
                kind = "user.removed"
            else:
                kind = follow_up(rng.random())
            planned.append((t, n, seq, kind, seq))
    planned.sort()
    return planned


def follow_up(r: float) -> str:
    if r < 0.5:
        return "user.changed"
    return "user.email.changed" if r < 0.8 else "user.locked"


def payload(kind: str, n: int, version: int) -> dict[str, str]:
    if kind == "user.added":
        return added_payload(n)
    if kind == "user.changed":
        return changed_payload(n, version)
    if kind == "user.email.changed":
        return email_payload(n, version)
    return {}


def rows(planned: list[Planned]) -> Iterator[tuple[Any, ...]]:
    """The events table's rows in position order (columns in `events` order)."""
    for position, (t, n, seq, kind, version) in enumerate(planned, start=1):
        yield (
            INSTANCE,
            "user",
            user_id(n),
            seq,
            position,
            kind,
            1,
            payload(kind, n, version),
            CREATOR,
            ORGS[n % len(ORGS)],
            at(t),
        )


def expected_users(planned: list[Planned]) -> dict[str, tuple[Any, ...]]:
    """What the projection must hold after the rebuild, by user id."""
    state: dict[str, dict[str, Any]] = {}
    for t, n, seq, kind, version in planned:
        uid = user_id(n)
        p = payload(kind, n, version)
        if kind == "user.added":
            state[uid] = {
                "instance_id": INSTANCE,
                "id": uid,
                "owner": ORGS[n % len(ORGS)],
                **p,
                "state": "active",
                "created_at": at(t),
                "changed_at": at(t),
                "sequence": seq,
            }
            continue
        if kind == "user.removed":
            del state[uid]
            continue
        row = state[uid]
        row.update(p)
        if kind == "user.locked":
            row["state"] = "locked"
        row["changed_at"], row["sequence"] = at(t), seq
    names = [c.name for c in users_table.columns]
    return {uid: tuple(row[c] for c in names) for uid, row in state.items()}


def count_types(planned: list[Planned]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in planned:
        counts[p[3]] = counts.get(p[3], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


FETCH = (
    f"SELECT {', '.join(c.name for c in events.columns)} FROM events"
    " WHERE position > {} AND position <= {} ORDER BY position"
)


# -- SQLite -------------------------------------------------------------------------


def sqlite_history(planned: list[Planned], key: str) -> Path:
    """The cached SQLite file holding this history (written when missing)."""
    path = DATA / f"rebuild-{key}.db"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{partial}")
    metadata.create_all(engine)
    dialect = engine.dialect
    engine.dispose()
    # Store values exactly as donjon's SQLAlchemy types would.
    to_db = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in events.columns]
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    insert = f"INSERT INTO events VALUES ({', '.join('?' * len(events.columns))})"
    chunk: list[tuple[Any, ...]] = []

    def write() -> None:
        conn.execute("BEGIN")
        conn.executemany(insert, chunk)
        conn.execute("COMMIT")
        chunk.clear()

    for row in rows(planned):
        chunk.append(tuple(f(v) if f else v for f, v in zip(to_db, row, strict=True)))
        if len(chunk) == 100_000:
            write()
    if chunk:
        write()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)
    return path


def sqlite_copy(path: Path) -> float:
    """Seconds to copy every event into an index-free table (committed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")  # as donjon's connections
        conn.execute("DROP TABLE IF EXISTS events_copy")
        conn.execute("CREATE TABLE events_copy AS SELECT * FROM events WHERE 0")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events_copy SELECT * FROM events")
        conn.execute("COMMIT")
        seconds = time.perf_counter() - start
        conn.execute("DROP TABLE events_copy")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return seconds
    finally:
        conn.close()


def sqlite_fetch(path: Path, total: int, window: int) -> float:
    """Seconds to fetch every event row into Python, `window` positions at a time."""
    conn = sqlite3.connect(path)
    try:
        sql = FETCH.format("?", "?")
        start = time.perf_counter()
        for after in range(0, total, window):
            conn.execute(sql, (after, after + window)).fetchall()
        return time.perf_counter() - start
    finally:
        conn.close()


async def run_sqlite(planned: list[Planned], key: str, bulk_limit: int) -> dict[str, Any]:
    started = time.perf_counter()
    cached = sqlite_history(planned, key)
    path = DATA / f"rebuild-run-{key}-{os.getpid()}.db"
    remove_sqlite(path)
    shutil.copyfile(cached, path)
    print(f"  history ready in {time.perf_counter() - started:.1f}s ({cached.name})", flush=True)
    try:
        sqlite_copy(path)  # warm the page cache once, like the PostgreSQL run's VACUUM

        async def copy() -> float:
            return sqlite_copy(path)

        async def fetch() -> float:
            return sqlite_fetch(path, len(planned), bulk_limit)

        db = Database.sqlite(path)
        try:
            return await measure(db, copy, fetch, planned, bulk_limit)
        finally:
            await db.dispose()
    finally:
        remove_sqlite(path)


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- PostgreSQL ---------------------------------------------------------------------


async def postgres_history(db: Database, dsn: str, planned: list[Planned]) -> None:
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)
    raw = await asyncpg.connect(**pg_connect_kwargs(dsn))
    try:
        for index in events.indexes:
            await raw.execute(f"DROP INDEX {index.name}")
        columns = [c.name for c in events.columns]
        batch: list[tuple[Any, ...]] = []
        for row in rows(planned):
            batch.append((*row[:7], json_dumps(row[7]), *row[8:]))
            if len(batch) == 100_000:
                await raw.copy_records_to_table("events", records=batch, columns=columns)
                batch.clear()
        if batch:
            await raw.copy_records_to_table("events", records=batch, columns=columns)
    finally:
        await raw.close()
    async with db.write() as conn:
        for index in events.indexes:
            await conn.run_sync(index.create)
    raw = await asyncpg.connect(**pg_connect_kwargs(dsn))
    try:
        # Hint bits and statistics settled before anything is timed.
        await raw.execute("VACUUM (FREEZE, ANALYZE) events")
        await raw.execute("CHECKPOINT")
    finally:
        await raw.close()


async def postgres_copy(dsn: str) -> float:
    raw = await asyncpg.connect(**pg_connect_kwargs(dsn))
    try:
        await raw.execute("DROP TABLE IF EXISTS events_copy")
        await raw.execute("CREATE TABLE events_copy (LIKE events)")
        start = time.perf_counter()
        await raw.execute("INSERT INTO events_copy SELECT * FROM events")
        seconds = time.perf_counter() - start
        await raw.execute("DROP TABLE events_copy")
        await raw.execute("CHECKPOINT")
        return seconds
    finally:
        await raw.close()


async def postgres_fetch(dsn: str, total: int, window: int) -> float:
    raw = await asyncpg.connect(**pg_connect_kwargs(dsn))
    try:
        sql = FETCH.format("$1", "$2")
        start = time.perf_counter()
        for after in range(0, total, window):
            await raw.fetch(sql, after, after + window)
        return time.perf_counter() - start
    finally:
        await raw.close()


async def run_postgres(planned: list[Planned], bulk_limit: int) -> dict[str, Any]:
    async with pg_database("rebuild") as dsn:
        db = Database.postgres(dsn, pool_size=4, max_overflow=0)
        try:
            started = time.perf_counter()
            await postgres_history(db, dsn, planned)
            print(f"  history written in {time.perf_counter() - started:.1f}s", flush=True)
            return await measure(
                db,
                lambda: postgres_copy(dsn),
                lambda: postgres_fetch(dsn, len(planned), bulk_limit),
                planned,
                bulk_limit,
            )
        finally:
            await db.dispose()


# -- both ---------------------------------------------------------------------------


async def measure(
    db: Database,
    copy: Callable[[], Awaitable[float]],
    fetch: Callable[[], Awaitable[float]],
    planned: list[Planned],
    bulk_limit: int,
) -> dict[str, Any]:
    total = len(planned)

    def show(what: str, seconds: float, unit: str = "rows/s") -> None:
        print(f"    {what:<8} {total / seconds:>10,.0f} {unit:<8} {seconds:7.2f}s", flush=True)

    copy_before = await copy()
    show("copy", copy_before)
    gc.disable()  # as the rebuild does while it replays a batch
    try:
        fetch_seconds = await fetch()
    finally:
        gc.enable()
    show("fetch", fetch_seconds)
    registry = EventRegistry()
    for cls in EVENT_TYPES:
        registry.register(cls)
    store = EventStore(db, registry)
    projection = UsersProjection()
    profiler = cProfile.Profile() if PROFILE else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = await rebuild(db, store, projection, bulk_limit=bulk_limit)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler:
        profiler.disable()
        out = DATA / f"rebuild-{db.dialect}.prof"
        profiler.dump_stats(out)
        print(f"    profile: {out}")
    show("rebuild", seconds, "events/s")
    print(f"             this process's CPU: {cpu:.2f}s ({cpu / seconds:.0%} of the time)")
    copy_after = await copy()
    show("copy", copy_after)
    if result.events != total:
        raise SystemExit(f"rebuild replayed {result.events} events, expected {total}")
    await check(db, planned)
    best_copy = min(copy_before, copy_after)
    return {
        "events": total,
        "copy_seconds": [round(copy_before, 3), round(copy_after, 3)],
        "copy_rows_per_s": round(total / best_copy),
        "fetch_seconds": round(fetch_seconds, 3),
        "fetch_rows_per_s": round(total / fetch_seconds),
        "fetch_ratio": round(best_copy / fetch_seconds, 3),
        "rebuild_seconds": round(seconds, 3),
        "rebuild_cpu_seconds": round(cpu, 3),
        "rebuild_events_per_s": round(total / seconds),
        "ratio": round(best_copy / seconds, 3),
    }


async def check(db: Database, planned: list[Planned]) -> None:
    """The rebuilt table must equal the state the history produces, row for row."""
    want = expected_users(planned)
    async with db.read() as conn:
        got = {r.id: tuple(r) for r in await conn.execute(select(users_table))}
    if got != want:
        missing = want.keys() - got.keys()
        extra = got.keys() - want.keys()
        wrong = [k for k in want.keys() & got.keys() if want[k] != got[k]]
        example = f"; e.g. {wrong[0]}: got {got[wrong[0]]}, want {want[wrong[0]]}" if wrong else ""
        raise SystemExit(
            f"rebuilt table is wrong: {len(missing)} missing, {len(extra)} extra,"
            f" {len(wrong)} different{example}"
        )
    print(f"    checked: {len(got):,} users rows equal the expected state", flush=True)


PROFILE = False  # --profile: cProfile the rebuild (slower; not for the figures)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=250_000)
    parser.add_argument("--events-per-user", type=int, default=4)
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite,postgres or one")
    parser.add_argument(
        "--bulk-limit", type=int, default=20_000, help="events per batch (RebuildBulkLimit)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile into bench/.data/")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    chosen = stores(args.stores)
    if args.events_per_user < 1:
        parser.error("--events-per-user must be at least 1")

    info = await machine()
    cmd = command()
    print(f"command: {cmd}")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    planned = plan(args.users, args.events_per_user, args.seed)
    # A full collection untracks the plan's tuples (ints and strings only), so
    # the garbage collector does not walk them while the rebuild is timed.
    gc.collect()
    counts = ", ".join(f"{k} {v:,}" for k, v in count_types(planned).items())
    print(f"history: {len(planned):,} events: {counts}")
    key = f"u{args.users}-e{args.events_per_user}-s{args.seed}-g{GENERATOR_VERSION}"
    results: dict[str, Any] = {}
    for store in chosen:
        print(f"{store}:", flush=True)
        if store == "sqlite":
            results[store] = await run_sqlite(planned, key, args.bulk_limit)
        else:
            results[store] = await run_postgres(planned, args.bulk_limit)
    print(
        "\nstore      events  copy rows/s  fetch rows/s (share)"
        "  rebuild events/s (share)  rebuild s"
    )
    for store, r in results.items():
        print(
            f"{store:<9} {r['events']:>9,} {r['copy_rows_per_s']:>12,}"
            f" {r['fetch_rows_per_s']:>12,} ({r['fetch_ratio']:>4.0%})"
            f" {r['rebuild_events_per_s']:>16,} ({r['ratio']:>4.0%}) {r['rebuild_seconds']:>10.2f}"
        )
    saved = save(
        "rebuild", {"command": cmd, "machine": info, "args": vars(args), "results": results}
    )
    print(f"saved {saved}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
