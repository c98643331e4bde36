"""Event executions: durable deliveries per second to a local receiver.

For each store, on a fresh database set up like `donjon setup` does:

  outbox      N events (machine users added, 500 a push) bound to one async
              target by an `event` execution; the outbox queues and delivers
              them all (enqueue and deliver steps run back to back, as the
              loops of `donjon start` do), Concurrency 10 and 50;
  reference   the same N signed POSTs made straight by the outbox's HTTP
              client (same SSRF check, same keep-alive pool), 10 at a time:
              the ratio outbox/reference is what durability (queue rows,
              claims, leases, results, all committed) costs on top of HTTP.

The receiver is a minimal HTTP/1.1 keep-alive server in this process (it
answers 200 to every POST), so it shares the machine with donjon: compare
the ratios of one run more than the absolute numbers.

    .venv/bin/python bench/actions_delivery.py [--events 2000] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import command, machine, pg_database, save, stores
from sqlalchemy import func, select

from donjon.actions import executions, targets
from donjon.actions.outbound import TargetClient
from donjon.actions.outbox import PENDING, Outbox, deliveries_table
from donjon.core import ids
from donjon.core.config import load_settings
from donjon.core.events import AggregateChanges
from donjon.core.identity import users
from donjon.core.identity.secrets import new_secret
from donjon.core.instance import list_instances
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner

MASTERKEY = b"0123456789abcdef0123456789abcdef"


class Receiver:
    """Answers 200 to every POST; counts them."""

    def __init__(self, answer: bytes = b"{}") -> None:
        self.count = 0
        self.port = 0
        self.answer = answer

    async def start(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._server = server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.count += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(self.answer)
                    + self.answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    def stop(self) -> None:
        self._server.close()


async def set_up(database: dict[str, Any], receiver: Receiver) -> tuple[Runtime, str]:
    settings = load_settings(
        env={
            **{f"DONJON_DATABASE_{k}": v for k, v in database.items()},
            "DONJON_ACTIONS_HTTP_ALLOWEDHOSTS": "127.0.0.1",
        }
    )
    runtime = build_runtime(settings, masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    async with runtime.db.read() as conn:
        instance_id = str((await list_instances(conn))[0]["id"])
    assert runtime.keys is not None
    target_id = ids.new_id()
    added = targets.TargetAdded(
        name="bench",
        endpoint=f"http://127.0.0.1:{receiver.port}/hook",
        target_type=targets.ASYNC,
        timeout=10.0,
        interrupt_on_error=False,
        signing_key=await targets.seal_key(runtime.keys, new_secret()),
    )
    await runtime.store.push([targets.add_target(instance_id, target_id, added)], creator="bench")
    state = await executions.ExecutionState.load(
        runtime.store, instance_id, "event/user.machine.added"
    )
    await runtime.store.push([executions.set_execution(state, [target_id])], creator="bench")
    return runtime, target_id


async def push_events(runtime: Runtime, instance_id: str, count: int) -> None:
    async with runtime.db.read() as conn:
        org_id = (await conn.execute(select(users.users_table.c.resource_owner).limit(1))).scalar()
    for start in range(0, count, 500):
        changes: list[AggregateChanges] = []
        for i in range(start, min(start + 500, count)):
            name = f"bench-{i}-{ids.new_id()}"
            changes.append(
                users.new_user(
                    instance_id,
                    ids.new_id(),
                    str(org_id),
                    [users.MachineAdded(username=name, name=name)],
                    name,
                )
            )
        await runtime.store.push(changes, creator="bench")


async def drain(outbox: Outbox) -> None:
    while True:
        while await outbox.enqueue():
            pass
        await outbox.deliver()
        async with outbox.db.read() as conn:
            pending = (
                await conn.execute(select(func.count()).where(deliveries_table.c.status == PENDING))
            ).scalar_one()
        if not pending:
            return


async def run_store(kind: str, events: int) -> dict[str, Any]:
    receiver = Receiver()
    await receiver.start()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            contexts: Any = None
            database = {"SQLITE_PATH": str(Path(tmp) / "bench.db")}
        else:
            contexts = pg_database("actions")
            dsn = await contexts.__aenter__()
            database = {"POSTGRES_DSN": dsn}
        try:
            runtime, target_id = await set_up(database, receiver)
            async with runtime.db.read() as conn:
                instance_id = str((await list_instances(conn))[0]["id"])
            for concurrency in (10, 50):
                settings = runtime.settings.Actions
                settings.Concurrency = concurrency
                client = TargetClient(runtime.keys, list(settings.HTTP.AllowedHosts))
                outbox = Outbox(runtime.db, runtime.store, settings, client)
                await drain(outbox)  # nothing pending from the previous round
                await push_events(runtime, instance_id, events)
                before = receiver.count
                started = time.perf_counter()
                await drain(outbox)
                elapsed = time.perf_counter() - started
                assert receiver.count - before == events, (receiver.count - before, events)
                results[f"outbox_concurrency_{concurrency}_per_s"] = round(events / elapsed, 1)
                await client.close()
            # The reference: the same POSTs without the outbox.
            client = TargetClient(runtime.keys, list(runtime.settings.Actions.HTTP.AllowedHosts))
            async with runtime.db.read() as conn:
                target = (await targets.targets_by_id(conn, instance_id, [target_id]))[target_id]
            body = json.dumps({"eventId": "1", "event_payload": {"x": 1}}).encode()
            started = time.perf_counter()
            for start in range(0, events, 10):
                await asyncio.gather(
                    *(client.post(target, body) for _ in range(min(10, events - start)))
                )
            elapsed = time.perf_counter() - started
            results["reference_concurrency_10_per_s"] = round(events / elapsed, 1)
            results["ratio_outbox10_to_reference"] = round(
                results["outbox_concurrency_10_per_s"] / results["reference_concurrency_10_per_s"],
                2,
            )
            await client.close()
            await runtime.close()
        finally:
            receiver.stop()
            if contexts is not None:
                await contexts.__aexit__(None, None, None)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--stores", type=stores, default=stores("sqlite,postgres"))
    args = parser.parse_args()
    result: dict[str, Any] = {
        "command": command(),
        "machine": await machine(),
        "events": args.events,
    }
    for kind in args.stores:
        result[kind] = await run_store(kind, args.events)
        print(kind, json.dumps(result[kind]))
    print("saved", save("actions_delivery", result))


if __name__ == "__main__":
    asyncio.run(main())
