"""The `on_event` hook's delivery (core/projections/event_hooks.py): every event committed
after a plugin was first run, in order, at least once, outside the write transaction (a
handler may push), retried then parked on failure, again after an interrupted batch, and
once per event with two processes on PostgreSQL (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from donjon.core import hookimpl
from donjon.core.events import Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.plugins import DonjonPluginManager, PluginInfo, apply_enabled, get_plugin_manager
from donjon.core.projections.state import get_state, list_failures
from donjon.core.projections.status import projection_status
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings
from tests.conftest import make_settings, postgres_database
from tests.core.plugins_support import MASTERKEY, first_instance, set_up

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Knocked(Event):
    TYPE = "eventhooktest.knocked"
    AGGREGATE_TYPE = "eventhooktest.door"
    n: int


@dataclass(frozen=True)
class Answered(Event):
    TYPE = "eventhooktest.answered"
    AGGREGATE_TYPE = "eventhooktest.door"
    n: int


class DoorEvents:
    @hookimpl
    def register_event_types(self) -> list[type[Event]]:
        return [Knocked, Answered]


class Doorman(DoorEvents):
    """Answers every knock by pushing an event (from inside on_event); may fail on purpose."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.fail_on: dict[int, int] = {}  # knock -> failures left
        self.block_on: int | None = None
        self.blocked = asyncio.Event()

    @hookimpl
    async def on_event(self, event: StoredEvent, runtime: Runtime) -> None:
        if event.type != Knocked.TYPE:
            return
        n = event.payload["n"]
        if self.block_on == n:
            self.blocked.set()
            await asyncio.sleep(3600)  # until the batch is cancelled (a crash)
        if self.fail_on.get(n, 0) > 0:
            self.fail_on[n] -= 1
            raise RuntimeError(f"knock {n} not welcome")
        self.seen.append((event.position, event.aggregate_id))
        await runtime.store.push(
            AggregateChanges(
                Aggregate(Answered.AGGREGATE_TYPE, event.aggregate_id, event.instance_id,
                          event.instance_id),
                [Answered(n)],
            ),
            creator="doorman",
        )  # fmt: skip


def manager(settings: Settings, doorman: object) -> DonjonPluginManager:
    pm = get_plugin_manager()
    pm.add_plugin(doorman, PluginInfo("doorman", "1.0", "test", essential=False, enabled=True))
    apply_enabled(pm, settings)
    return pm


async def knock(runtime: Runtime, instance_id: str, *ns: int, door: str = "d1") -> list[int]:
    stored = await runtime.store.push(
        AggregateChanges(
            Aggregate(Knocked.AGGREGATE_TYPE, door, instance_id, instance_id),
            [Knocked(n) for n in ns],
        ),
        creator="test",
    )
    return [e.position for e in stored]


async def answers(runtime: Runtime) -> list[int]:
    from donjon.core.eventstore.query import EventQuery

    found = await runtime.store.query(EventQuery(event_types=(Answered.TYPE,)))
    return [e.payload["n"] for e in found]


@pytest.fixture
def quick(settings: Settings) -> Settings:
    settings.Projections.RetryFailedAfter = settings.Projections.RetryFailedAfter / 20  # 50ms
    settings.Projections.MaxFailureCount = 3
    settings.Projections.BulkLimit = 2  # batches of two: more and less than a push
    return settings


async def test_events_reach_on_event_in_order_once_each_and_a_handler_may_push(
    quick: Settings,
) -> None:
    doorman = Doorman()
    before_plugin = await set_up(
        quick, manager(quick, DoorEvents())
    )  # history before the plugin is installed
    instance_id = await first_instance(before_plugin)
    await knock(before_plugin, instance_id, 0)
    await before_plugin.close()

    runtime = build_runtime(quick, pm=manager(quick, doorman), masterkey=MASTERKEY)
    try:
        hooks = runtime.event_hooks
        [subscriber] = hooks.subscribers
        assert subscriber.name == "on_event:doorman"
        await hooks.prepare()
        positions = await knock(runtime, instance_id, 1, 2, 3)
        positions += await knock(runtime, instance_id, 4, door="d2")
        assert await hooks.catch_up(subscriber) >= 4
        # The history before the plugin's first run is not replayed; the rest in order.
        assert [p for p, _ in doorman.seen] == positions
        assert await answers(runtime) == [1, 2, 3, 4]  # pushed from inside the handler
        await hooks.catch_up(subscriber)  # the Answered events the handler pushed, if left
        assert await hooks.catch_up(subscriber) == 0
        assert len(doorman.seen) == 4
        [row] = [r for r in await projection_status(runtime) if r["name"] == subscriber.name]
        assert row["kind"] == "on_event" and row["lag"] == 0 and row["parked"] == 0
    finally:
        await runtime.close()


async def test_a_failing_handler_is_retried_then_parked_and_delivery_goes_on(
    quick: Settings,
) -> None:
    doorman = Doorman()
    runtime = await set_up(quick, manager(quick, doorman))
    try:
        hooks = runtime.event_hooks
        [subscriber] = hooks.subscribers
        await hooks.prepare()
        instance_id = await first_instance(runtime)
        doorman.fail_on = {1: 1, 2: 10}  # 1 fails once; 2 always (parked after 3)
        p1, p2, p3 = await knock(runtime, instance_id, 1, 2, 3)

        await hooks.catch_up(subscriber)
        assert doorman.seen == []  # stopped at the failing first event, waits for the retry
        async with runtime.db.read() as conn:
            state = await get_state(conn, subscriber.name)
            assert state is not None and state.retry_at is not None and state.position < p1
        task = asyncio.create_task(hooks.run())
        try:
            for _ in range(200):
                if len(doorman.seen) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert [p for p, _ in doorman.seen] == [p1, p3]
        async with runtime.db.read() as conn:
            failures = await list_failures(conn, subscriber.name)
        assert [(f["position"], f["parked"], f["failure_count"]) for f in failures] == [
            (p2, True, 3)
        ]
        assert "knock 2 not welcome" in failures[0]["error"]
    finally:
        await runtime.close()


async def test_a_batch_interrupted_mid_way_is_delivered_again(quick: Settings) -> None:
    doorman = Doorman()
    runtime = await set_up(quick, manager(quick, doorman))
    try:
        hooks = runtime.event_hooks
        [subscriber] = hooks.subscribers
        await hooks.prepare()
        instance_id = await first_instance(runtime)
        p1, p2 = await knock(runtime, instance_id, 1, 2)
        doorman.block_on = 2
        task = asyncio.create_task(hooks.catch_up(subscriber))
        await asyncio.wait_for(doorman.blocked.wait(), 10)
        task.cancel()  # the process dies with knock 1 handled, knock 2 in the handler
        await asyncio.gather(task, return_exceptions=True)
        assert [p for p, _ in doorman.seen] == [p1]

        doorman.block_on = None
        await hooks.catch_up(subscriber)
        # At least once: knock 1 again (its position was never committed), then knock 2.
        assert [p for p, _ in doorman.seen] == [p1, p1, p2]
    finally:
        await runtime.close()


@pytest.mark.postgres
async def test_two_processes_on_postgresql_deliver_each_event_once(pg_dsn: str) -> None:
    settings = make_settings(postgres_database(pg_dsn), Projections={"BulkLimit": 3})
    doormen = [Doorman(), Doorman()]
    first = await set_up(settings, manager(settings, doormen[0]))
    second = build_runtime(settings, pm=manager(settings, doormen[1]), masterkey=MASTERKEY)
    try:
        await first.event_hooks.prepare()
        instance_id = await first_instance(first)
        expected: list[int] = []
        for i in range(6):
            expected += await knock(first, instance_id, 3 * i, 3 * i + 1, 3 * i + 2)

        async def drain(runtime: Runtime) -> Any:
            [s] = runtime.event_hooks.subscribers
            for _ in range(20):
                await runtime.event_hooks.catch_up(s)
                await asyncio.sleep(0.01)

        await asyncio.gather(drain(first), drain(second))
        delivered = sorted(p for d in doormen for p, _ in d.seen)
        assert delivered == expected  # every knock once, by one process or the other
    finally:
        await second.close()
        await first.close()
