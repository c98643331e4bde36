"""Users through the management API: creation rate, and ListUsers latency at 100,000 users.

For each store, a real `donjon start-from-init` process (uvicorn, uvloop) on
a fresh database, driven over HTTP with keep-alive connections:

  create      AddHumanUser (profile, verified email, no password: password
              hashing is a separate, deliberate cost), sequentially from one
              client and from 16 concurrent clients;
  reference   the same user.human.added events pushed straight to the event
              store by this process (no HTTP, no request decoding, no
              permission check), sequential and 16 concurrent: the ratio
              API/store is what the API layer costs on top of the store;
  list        after seeding the store to --users users (pushed in bulk by
              this process, 500 users a push, inline projections included),
              ListUsers latency percentiles for common queries, against the
              same query's SQL run directly (the read model's own limit).

The load generator shares the machine's cores with the server: compare the
ratios, measured in the same run, more than the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness import DATA, Server, command, machine, pg_database, save, stores
from sqlalchemy import func, select

from donjon.core import ids
from donjon.core.config import load_settings
from donjon.core.identity import users
from donjon.core.instance import list_instances
from donjon.core.runtime import build_runtime

ADD_HUMAN = "/zitadel.user.v2.UserService/AddHumanUser"
LIST_USERS = "/zitadel.user.v2.UserService/ListUsers"


def human_body(tag: str, n: int) -> dict[str, Any]:
    return {
        "username": f"{tag}-{n}",
        "profile": {"givenName": "Bench", "familyName": f"User {n}"},
        "email": {"email": f"{tag}-{n}@bench.example", "isVerified": True},
    }


async def create_over_api(server: Server, tag: str, count: int, clients: int) -> float:
    """Users/s of `count` AddHumanUser calls spread over `clients` concurrent clients."""
    numbers = iter(range(count))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for n in numbers:
                r = await client.post(ADD_HUMAN, json=human_body(tag, n))
                if r.status_code != 200:
                    raise SystemExit(f"AddHumanUser failed: {r.status_code} {r.text}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return count / (time.perf_counter() - start)


def added(instance_id: str, org_id: str, tag: str, n: int) -> Any:
    return users.new_user(
        instance_id,
        ids.new_id(),
        org_id,
        [
            users.HumanAdded(
                username=f"{tag}-{n}",
                first_name="Bench",
                last_name=f"User {n}",
                display_name=f"Bench User {n}",
                email=f"{tag}-{n}@bench.example",
                email_verified=True,
            )
        ],
        f"{tag}-{n}",
    )


async def push_to_store(
    runtime: Any, where: tuple[str, str], tag: str, count: int, writers: int
) -> float:
    numbers = iter(range(count))

    async def writer() -> None:
        for n in numbers:
            await runtime.store.push(added(*where, tag, n), creator="bench")

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return count / (time.perf_counter() - start)


async def seed(runtime: Any, where: tuple[str, str], target: int, batch: int = 500) -> float:
    async with runtime.db.read() as conn:
        have = (
            await conn.execute(select(func.count()).select_from(users.users_table))
        ).scalar_one()
    start = time.perf_counter()
    n = 0
    while have < target:
        size = min(batch, target - have)
        await runtime.store.push(
            [added(*where, "seed", n + i) for i in range(size)], creator="bench"
        )
        n += size
        have += size
    return time.perf_counter() - start


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


LIST_QUERIES: dict[str, dict[str, Any]] = {
    "first page (100, newest first)": {"query": {"limit": 100}},
    "page at offset 50,000": {"query": {"offset": "50000", "limit": 100}},
    "user name starts with": {
        "queries": [
            {"userNameQuery": {"userName": "seed-4242", "method": "TEXT_QUERY_METHOD_STARTS_WITH"}}
        ]
    },
    "email equals (ignore case)": {
        "queries": [
            {
                "emailQuery": {
                    "emailAddress": "SEED-777@bench.example",
                    "method": "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE",
                }
            }
        ]
    },
}


async def list_latency(server: Server, body: dict[str, Any], rounds: int) -> dict[str, float]:
    samples = []
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        for _ in range(rounds):
            start = time.perf_counter()
            r = await c.post(LIST_USERS, json=body)
            samples.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise SystemExit(f"ListUsers failed: {r.status_code} {r.text}")
    return percentiles(samples)


async def raw_first_page(runtime: Any, instance_id: str, rounds: int) -> dict[str, float]:
    """The first page's SQL, straight through SQLAlchemy: the read model's own cost."""
    t = users.users_table
    stmt = (
        select(t)
        .where(t.c.instance_id == instance_id)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(100)
    )
    count = select(func.count()).select_from(t).where(t.c.instance_id == instance_id)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with runtime.db.read() as conn:
            (await conn.execute(count)).scalar_one()
            (await conn.execute(stmt)).all()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


async def run_store(store: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    if store == "sqlite":
        db_path = folder / "donjon.db"
        env = {"DONJON_DATABASE_SQLITE_PATH": str(db_path)}
        return await measure(store, env, args, folder)
    async with pg_database("api_users") as dsn:
        return await measure(store, {"DONJON_DATABASE_POSTGRES_DSN": dsn}, args, folder)


async def measure(
    store: str, env: dict[str, str], args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {"store": store}
    with Server(env, folder) as server:
        for key, value in env.items():
            os.environ[key] = value
        settings = load_settings([])
        runtime = build_runtime(settings)
        try:
            async with runtime.db.read() as conn:
                instance_id = str((await list_instances(conn))[0]["id"])
                org_id = (
                    await conn.execute(
                        select(users.users_table.c.resource_owner).where(
                            users.users_table.c.username == "bench-sa"
                        )
                    )
                ).scalar_one()
            where = (instance_id, org_id)
            for clients in (1, 16):
                api = await create_over_api(server, f"api{clients}", args.create, clients)
                ref = await push_to_store(runtime, where, f"store{clients}", args.create, clients)
                result[f"create_{clients}"] = {
                    "api_users_per_s": round(api, 1),
                    "store_users_per_s": round(ref, 1),
                    "ratio": round(api / ref, 3),
                }
                print(store, clients, result[f"create_{clients}"], flush=True)
            result["seed_s"] = round(await seed(runtime, where, args.users), 1)
            # What the server does every 10 minutes on SQLite (PostgreSQL:
            # autovacuum); SQLite connections read statistics when they open,
            # so the server is restarted to use them now.
            await runtime.db.analyze()
            if store == "sqlite":
                server.__exit__(None, None, None)
                server.__enter__()
            result["users"] = args.users
            lists: dict[str, Any] = {}
            for name, body in LIST_QUERIES.items():
                lists[name] = await list_latency(server, body, args.rounds)
                print(store, name, lists[name], flush=True)
            lists["raw SQL of the first page"] = await raw_first_page(
                runtime, instance_id, args.rounds
            )
            result["list"] = lists
        finally:
            await runtime.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres", type=stores)
    parser.add_argument("--create", type=int, default=1000, help="users per creation run")
    parser.add_argument("--users", type=int, default=100_000, help="users for the list runs")
    parser.add_argument("--rounds", type=int, default=200, help="requests per list query")
    args = parser.parse_args()
    report: dict[str, Any] = {"command": command(), "machine": await machine(), "runs": []}
    DATA.mkdir(parents=True, exist_ok=True)
    for store in args.stores:
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            report["runs"].append(await run_store(store, args, Path(tmp)))
    print(f"saved {save('api_users', report)}")


if __name__ == "__main__":
    asyncio.run(main())
