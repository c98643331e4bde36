"""The setup runner: ordered, recorded, repeatable, resumable steps that several
processes can run against one store without running a step twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from donjon.core.errors import SetupError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.setup.lease import get_lease, take_lease
from donjon.core.setup.migrations import (
    SYSTEM_AGGREGATE,
    SYSTEM_INSTANCE,
    Migration,
    MigrationStarted,
    StepContext,
)
from donjon.core.setup.runner import SetupRunner
from tests.conftest import MASTERKEY, make_settings, sqlite_database
from tests.core.test_setup_support import (
    donjon,
    entry_point_dir,
    prepared_runtime,
    step_events,
    write_config,
)

pytestmark = pytest.mark.anyio

DEAD = "lost-node:4242:dead00"


@pytest.fixture
async def short_lease(database: dict[str, Any]) -> AsyncIterator[Runtime]:
    """A set-up store whose Setup.LeaseDuration is 2s (SQLite, then PostgreSQL)."""
    runtime = await prepared_runtime(database, Setup={"LeaseDuration": "2s"})
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def sqlite_runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A set-up SQLite store whose Setup.LeaseDuration is 2s, for the tests whose
    subject is the runner's logic rather than the database."""
    runtime = await prepared_runtime(
        sqlite_database(tmp_path / "donjon.db"), Setup={"LeaseDuration": "2s"}
    )
    try:
        yield runtime
    finally:
        await runtime.close()


async def record_types(runtime: Runtime, name: str) -> list[str]:
    events = await runtime.store.aggregate_events(SYSTEM_INSTANCE, SYSTEM_AGGREGATE, name)
    return [e.type.removeprefix("system.migration.") for e in events]


async def last_payload(runtime: Runtime, name: str) -> dict[str, Any]:
    events = await runtime.store.aggregate_events(SYSTEM_INSTANCE, SYSTEM_AGGREGATE, name)
    return events[-1].payload


async def leave_started(runtime: Runtime, name: str, holder: str, lease: timedelta) -> None:
    """What a process killed during step `name` leaves behind: `started` and its lease."""
    rec = await SetupRunner(runtime).record(name)
    async with runtime.db.write() as conn:
        aggregate = Aggregate(SYSTEM_AGGREGATE, name, SYSTEM_INSTANCE, SYSTEM_INSTANCE)
        changes = AggregateChanges(
            aggregate, [MigrationStarted(name, holder)], expected_sequence=rec.sequence
        )
        await runtime.store.push_in(conn, [changes], creator=holder)
        await take_lease(conn, name, holder, lease)


def recording(log: list[str], name: str, *, seconds: float = 0.0) -> Migration:
    async def execute(ctx: StepContext) -> dict[str, Any]:
        log.append(name)
        await asyncio.sleep(seconds)
        return {"ran": len(log)}

    return Migration(name, execute)


async def test_steps_run_in_order_once_and_are_recorded_started_then_done(runtime: Runtime) -> None:
    ran: list[str] = []
    steps = [recording(ran, "test.one"), recording(ran, "test.two"), recording(ran, "test.three")]

    assert await SetupRunner(runtime).run(steps) == ["test.one", "test.two", "test.three"]
    assert await SetupRunner(runtime).run(steps) == []

    assert ran == ["test.one", "test.two", "test.three"]
    for name in ran:
        assert await record_types(runtime, name) == ["started", "done"]
    assert await last_payload(runtime, "test.two") == {"name": "test.two", "info": {"ran": 2}}


async def test_the_core_steps_are_done_after_setup_and_nothing_is_pending(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    names = [m.name for m in runtime.migrations()]
    inline = [f"projection.{p.name}" for p in runtime.projections if p.inline]
    assert names[: len(inline) + 2] == [*inline, "first_instance", "external_domain"]
    assert names[0] == "projection.instances"
    assert await SetupRunner(runtime).pending() == []
    for name in names:
        assert (await SetupRunner(runtime).record(name)).status == "done"


async def test_a_repeatable_step_runs_again_only_when_it_is_due(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    ran: list[str] = []
    due = {"now": False}

    async def rerun_when(rt: Runtime) -> bool:
        return due["now"]

    async def execute(ctx: StepContext) -> None:
        ran.append("x")

    step = Migration("test.repeatable", execute, rerun_when=rerun_when)
    runner = SetupRunner(runtime)

    await runner.run([step])
    await runner.run([step])
    assert ran == ["x"]
    due["now"] = True
    await runner.run([step])
    assert ran == ["x", "x"]
    assert await record_types(runtime, "test.repeatable") == ["started", "done", "started", "done"]


async def test_a_failing_step_is_recorded_failed_stops_setup_and_runs_again_next_time(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    ran: list[str] = []
    broken = {"yes": True}

    async def flaky(ctx: StepContext) -> None:
        ran.append("flaky")
        if broken["yes"]:
            raise RuntimeError("the disk is full")

    steps = [Migration("test.flaky", flaky), recording(ran, "test.after")]

    with pytest.raises(SetupError, match="step test.flaky failed: RuntimeError: the disk is full"):
        await SetupRunner(runtime).run(steps)
    assert ran == ["flaky"]  # the steps after it wait for it
    assert await record_types(runtime, "test.flaky") == ["started", "failed"]
    assert (await last_payload(runtime, "test.flaky"))["error"] == "RuntimeError: the disk is full"
    async with runtime.db.read() as conn:
        assert await get_lease(conn, "test.flaky") is None

    broken["yes"] = False
    assert await SetupRunner(runtime).run(steps) == ["test.flaky", "test.after"]
    assert await record_types(runtime, "test.flaky") == ["started", "failed", "started", "done"]


async def test_a_cancelled_step_is_recorded_failed_with_the_reason_and_resumed_next_time(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    entered = asyncio.Event()
    release = asyncio.Event()

    async def long_step(ctx: StepContext) -> None:
        entered.set()
        await release.wait()

    step = Migration("test.long", long_step)
    runner = SetupRunner(runtime)
    task = asyncio.create_task(runner.run([step]))
    await entered.wait()
    runner.cancel_reason = "canceled by SIGTERM"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await record_types(runtime, "test.long") == ["started", "failed"]
    assert (await last_payload(runtime, "test.long"))[
        "error"
    ] == "canceled by SIGTERM while running"

    release.set()
    assert await SetupRunner(runtime).run([step]) == ["test.long"]
    assert await record_types(runtime, "test.long") == ["started", "failed", "started", "done"]


async def test_two_steps_with_one_name_are_refused(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    ran: list[str] = []
    with pytest.raises(SetupError, match="two setup steps are named 'test.twin'"):
        await SetupRunner(runtime).run([recording(ran, "test.twin"), recording(ran, "test.twin")])
    assert ran == []


@pytest.mark.postgres
async def test_two_runners_on_one_postgresql_never_run_a_step_twice(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings({"postgres": {"DSN": pg_dsn}})
    first = await prepared_runtime({"postgres": {"DSN": pg_dsn}})
    second = build_runtime(settings, masterkey=MASTERKEY)
    ran: list[str] = []
    steps = [recording(ran, "test.slow", seconds=1.0), recording(ran, "test.next", seconds=0.2)]
    caplog.set_level(logging.INFO, logger="donjon.core.setup.runner")
    try:
        results = await asyncio.gather(
            SetupRunner(first, poll=0.05).run(steps), SetupRunner(second, poll=0.05).run(steps)
        )
        for runtime in (first, second):
            assert await SetupRunner(runtime).pending() == []
        assert await record_types(first, "test.slow") == ["started", "done"]
        assert await record_types(first, "test.next") == ["started", "done"]
    finally:
        await first.close()
        await second.close()

    assert ran == ["test.slow", "test.next"]
    # Each step was run by one of the two; the other waited, then found it done.
    assert sorted(results[0] + results[1]) == ["test.next", "test.slow"]
    assert "step test.slow is running in" in caplog.text and "; waiting" in caplog.text


async def test_a_step_left_started_by_a_dead_process_is_taken_over_once_its_lease_expires(
    short_lease: Runtime,
) -> None:
    runtime = short_lease
    ran: list[str] = []
    step = recording(ran, "test.orphan")
    await leave_started(runtime, "test.orphan", DEAD, timedelta(seconds=1.5))
    began = time.monotonic()

    assert await SetupRunner(runtime).run([step]) == ["test.orphan"]

    assert time.monotonic() - began >= 1.0  # it waited for the lease to expire
    assert ran == ["test.orphan"]
    assert await record_types(runtime, "test.orphan") == ["started", "failed", "started", "done"]
    events = await runtime.store.aggregate_events(SYSTEM_INSTANCE, SYSTEM_AGGREGATE, "test.orphan")
    assert f"lease of {DEAD} expired at" in events[1].payload["error"]
    assert "taken over by" in events[1].payload["error"]


async def test_a_runner_that_lost_its_lease_stops_its_step_and_records_nothing(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    entered = asyncio.Event()

    async def long_step(ctx: StepContext) -> None:
        entered.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(SetupRunner(runtime).run([Migration("test.stolen", long_step)]))
    await entered.wait()
    # Another process decided this one was dead (a pause longer than the lease).
    async with runtime.db.write() as conn:
        await take_lease(conn, "test.stolen", "other:1:aaaaaa", timedelta(seconds=30))

    with pytest.raises(SetupError, match="another process took it over while it ran"):
        await asyncio.wait_for(task, timeout=5)
    assert await record_types(runtime, "test.stolen") == ["started"]  # the new holder's to end


async def test_cleanup_records_steps_left_started_failed_but_spares_live_leases(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    await leave_started(runtime, "first_instance", DEAD, timedelta(seconds=-1))
    await leave_started(runtime, "external_domain", "alive:1:bbbbbb", timedelta(seconds=60))

    report = await SetupRunner(runtime).cleanup()

    assert report.cleaned == ["first_instance"]
    assert [lease.step for lease in report.running] == ["external_domain"]
    assert (await last_payload(runtime, "first_instance"))["error"] == "canceled by setup cleanup"
    assert (await SetupRunner(runtime).record("external_domain")).status == "started"

    forced = await SetupRunner(runtime).cleanup(force=True)
    assert forced.cleaned == ["external_domain"]
    async with runtime.db.read() as conn:
        assert await get_lease(conn, "external_domain") is None
    assert await SetupRunner(runtime).run() == ["first_instance", "external_domain"]


@pytest.mark.slow
async def test_donjon_setup_cleanup_marks_a_stuck_step_failed_and_setup_reruns_it(
    tmp_path: Path,
) -> None:
    database = sqlite_database(tmp_path / "donjon.db")
    runtime = await prepared_runtime(database)
    await leave_started(runtime, "first_instance", DEAD, timedelta(seconds=600))
    await runtime.close()
    config = write_config(tmp_path / "donjon.yaml", database)

    status, output = await asyncio.to_thread(
        donjon, tmp_path, "setup", "--config", str(config), "cleanup", "--force"
    )

    assert status == 0, output
    assert "marked failed: first_instance" in output
    assert [t for t, _ in step_events(database, "first_instance")][-1] == "system.migration.failed"


@pytest.mark.slow
async def test_a_failing_step_makes_donjon_setup_exit_1_and_the_next_setup_runs_it(
    tmp_path: Path,
) -> None:
    database = sqlite_database(tmp_path / "donjon.db")
    await (await prepared_runtime(database)).close()
    config = write_config(tmp_path / "donjon.yaml", database)
    key = tmp_path / "masterkey"
    key.write_bytes(MASTERKEY)
    plugin = entry_point_dir(tmp_path / "plugin")
    args = ("setup", "--config", str(config), "--masterkeyFile", str(key))

    status, output = await asyncio.to_thread(
        donjon, tmp_path, *args, plugin_dir=plugin, env={"DONJON_TEST_FAIL_STEP": "1"}
    )
    assert status == 1, output
    assert (
        "donjon: step setuptest.flaky failed: RuntimeError: the flaky step was told to fail"
        in output
    )
    assert "Traceback" not in output
    events = step_events(database, "setuptest.flaky")
    assert [t for t, _ in events] == ["system.migration.started", "system.migration.failed"]
    assert events[-1][1]["error"] == "RuntimeError: the flaky step was told to fail"

    status, output = await asyncio.to_thread(donjon, tmp_path, *args, plugin_dir=plugin)
    assert status == 0, output
    assert [t for t, _ in step_events(database, "setuptest.flaky")][-1] == "system.migration.done"


async def test_projection_step_taken_over_after_its_rebuild_finished_replays_nothing(
    runtime,
) -> None:
    """A process killed between the rebuild's last batch and `done` leaves the
    step started; the process that takes it over must not start the rebuild over."""
    from donjon.core.setup.migrations import StepContext
    from donjon.core.setup.steps import projection_step

    step = projection_step(runtime.projection("instances"))
    info = await step.execute(StepContext(runtime, step.name, lambda done, total: None))
    assert info == {"version": runtime.projection("instances").version, "events": 0}
