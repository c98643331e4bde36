"""Push throughput: single-event commands, each pushed in its own transaction.

For each store and each writer count, a fresh database, then `--events`
pushes by that many concurrent writers (asyncio tasks sharing one
EventStore; PostgreSQL pool of writers + 4 connections). Two kinds of command:

  added    user.added on a new aggregate (expected sequence 0) claiming its
           username as a unique value — a user registration;
  changed  user.changed on an existing user with the expected sequence the
           writer last saw (each writer owns its users, so no conflicts).

No projection is registered: this measures the store's push path alone
(validation, head read, unique claim, push lock, insert, commit). Reports
events/s and per-push latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness import DATA, command, machine, pg_database, save, stores
from userlike import (
    EVENT_TYPES,
    INSTANCE,
    ORGS,
    UserAdded,
    UserChanged,
    added_payload,
    changed_payload,
    user_id,
)

from donjon.core.database import Database
from donjon.core.events import AddUnique, Aggregate, AggregateChanges, EventRegistry
from donjon.core.eventstore.schema import metadata
from donjon.core.eventstore.store import EventStore

KINDS = ("added", "changed")
USERNAME_TAKEN = "Errors.User.AlreadyExists"


def registration(n: int) -> AggregateChanges:
    p = added_payload(n)
    return AggregateChanges(
        Aggregate("user", user_id(n), INSTANCE, ORGS[n % len(ORGS)]),
        [UserAdded(**p)],
        expected_sequence=0,
        unique=[AddUnique("username", p["username"], USERNAME_TAKEN)],
    )


def profile_change(n: int, expected: int) -> AggregateChanges:
    return AggregateChanges(
        Aggregate("user", user_id(n), INSTANCE, ORGS[n % len(ORGS)]),
        [UserChanged(**changed_payload(n, expected + 1))],
        expected_sequence=expected,
    )


async def run(db: Database, kind: str, writers: int, total: int) -> dict[str, Any]:
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)
    registry = EventRegistry()
    for cls in EVENT_TYPES:
        registry.register(cls)
    store = EventStore(db, registry)
    # Users the `changed` writers own (writer w: users w, w + writers, ...), and a
    # warm-up push per writer so that connections are open before the clock starts.
    owned = max(writers * 8, 64)
    for start in range(0, owned, 500):
        users = range(start, min(start + 500, owned))
        await store.push([registration(n) for n in users], creator="bench")
    sequences = dict.fromkeys(range(owned), 1)
    next_new = owned
    latencies: list[float] = []

    async def writer(w: int, pushes: int) -> None:
        nonlocal next_new
        mine = list(range(w, owned, writers))
        for i in range(pushes):
            if kind == "added":
                n, next_new = next_new, next_new + 1
                change = registration(n)
            else:
                n = mine[i % len(mine)]
                change = profile_change(n, sequences[n])
            began = time.perf_counter()
            await store.push(change, creator="bench")
            latencies.append(time.perf_counter() - began)
            if kind == "changed":
                sequences[n] += 1

    await asyncio.gather(*(writer(w, 1) for w in range(writers)))
    latencies.clear()
    share, extra = divmod(total, writers)
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer(w, share + (w < extra)) for w in range(writers)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    latencies.sort()
    return {
        "events": total,
        "seconds": round(seconds, 3),
        "events_per_s": round(total / seconds),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        # This process's CPU (Python, drivers, SQLite itself) per push.
        "cpu_ms_per_push": round(cpu / total * 1000, 2),
    }


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def one(store_kind: str, kind: str, writers: int, total: int) -> dict[str, Any]:
    if store_kind == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
        path = DATA / f"push-run-{kind}-{writers}-{os.getpid()}.db"
        remove_sqlite(path)
        db = Database.sqlite(path)
        try:
            return await run(db, kind, writers, total)
        finally:
            await db.dispose()
            remove_sqlite(path)
    async with pg_database("push") as dsn:
        db = Database.postgres(dsn, pool_size=writers + 4, max_overflow=0)
        try:
            return await run(db, kind, writers, total)
        finally:
            await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="pushes per measurement")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite,postgres or one")
    parser.add_argument("--writers", default="1,16", help="concurrent writers, comma-separated")
    parser.add_argument("--kinds", default="added,changed", help="comma-separated: added,changed")
    args = parser.parse_args()
    chosen = stores(args.stores)
    writer_counts = [int(w) for w in args.writers.split(",")]
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds: expected a comma-separated subset of {','.join(KINDS)}")
    if any(w < 1 for w in writer_counts) or args.events < max(writer_counts):
        parser.error("--writers must be positive and --events at least the largest writer count")

    info = await machine()
    cmd = command()
    print(f"command: {cmd}")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print("store     kind     writers  events/s   seconds  p50 ms  p99 ms  CPU ms/push")
    results: list[dict[str, Any]] = []
    for store_kind in chosen:
        for kind in kinds:
            for writers in writer_counts:
                r = await one(store_kind, kind, writers, args.events)
                results.append({"store": store_kind, "kind": kind, "writers": writers, **r})
                print(
                    f"{store_kind:<9} {kind:<8} {writers:>7} {r['events_per_s']:>9,}"
                    f" {r['seconds']:>9.2f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
                    f" {r['cpu_ms_per_push']:>12.2f}",
                    flush=True,
                )
    saved = save("push", {"command": cmd, "machine": info, "args": vars(args), "results": results})
    print(f"saved {saved}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
