"""Async projections: caught up by the runner, rows and position committed together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update

from donjon.core.eventstore.schema import projection_failures, projection_states
from donjon.core.projections.runner import ProjectionRunner
from donjon.core.projections.state import get_state
from donjon.core.projections.statements import Statement
from donjon.core.projections.status import projection_status
from donjon.core.settings import Settings
from tests.conftest import make_settings
from tests.core.test_projections_support import (
    NoteAdded,
    NoteRenamed,
    NotesProjection,
    bare_store,
    build,
    note,
    notes_table,
    snapshot,
)

pytestmark = pytest.mark.anyio


def runner_settings(database: dict[str, Any], **projections: Any) -> Settings:
    return make_settings(
        database, Projections={"RetryFailedAfter": "200ms", "RequeueEvery": "100ms", **projections}
    )


async def position_of(db: Any, name: str) -> int:
    async with db.read() as conn:
        state = await get_state(conn, name)
    assert state is not None
    return state.position


async def failures(db: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(projection_failures).order_by(projection_failures.c.position)
        )
        return [dict(r._mapping) for r in rows]


async def notes_soon(db: Any, within: float = 10.0) -> list[dict[str, Any]]:
    """The notes table once it has rows (or empty after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while not (rows := (await snapshot(db, notes_table))["test_notes"]):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    return rows


async def test_runner_catches_up_with_every_pushed_event(database: dict[str, Any]) -> None:
    settings = runner_settings(database)
    async with bare_store(settings) as (db, store):
        projection = NotesProjection()
        await build(db, store, projection)
        for i in range(30):
            await store.push(note(f"n{i:02}", NoteAdded(f"note {i}")), creator="test")
        await store.push(note("n00", NoteRenamed("renamed")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        assert await runner.catch_up(projection) == 31
        rows = (await snapshot(db, notes_table))["test_notes"]
        assert len(rows) == 30 and rows[0]["title"] == "renamed"
        assert await position_of(db, projection.name) == 31
        assert await runner.catch_up(projection) == 0


async def test_running_runner_follows_pushes_of_this_process(database: dict[str, Any]) -> None:
    settings = runner_settings(database, RequeueEvery="1h")  # only the push notification wakes it
    async with bare_store(settings) as (db, store):
        projection = NotesProjection()
        await build(db, store, projection)
        runner = ProjectionRunner(db, store, [projection], settings.Projections)
        store.listeners.append(runner.notify)
        task = asyncio.create_task(runner.run())
        try:
            await store.push(note("n1", NoteAdded("live")), creator="test")
            rows = await notes_soon(db)
            assert [r["title"] for r in rows] == ["live"]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


class Crash(BaseException):
    """Stands for the process dying mid-batch: no handler error, the batch just stops."""


class CrashingProjection(NotesProjection):
    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at

    def reduce(self, event: Any) -> list[Statement]:
        if event.position == self.crash_at:
            raise Crash()
        return list(super().reduce(event))


async def test_crash_mid_batch_commits_neither_rows_nor_position(database: dict[str, Any]) -> None:
    settings = runner_settings(database)
    async with bare_store(settings) as (db, store):
        crashing = CrashingProjection(crash_at=5)
        await build(db, store, crashing)
        for i in range(8):
            await store.push(note(f"n{i}", NoteAdded(f"note {i}")), creator="test")

        with pytest.raises(Crash):
            await ProjectionRunner(db, store, [crashing], settings.Projections).catch_up(crashing)

        # Events 1-4 were written before the crash, in the batch's transaction: all gone.
        assert crashing.calls == [1, 2, 3, 4]
        assert (await snapshot(db, notes_table))["test_notes"] == []
        assert await position_of(db, crashing.name) == 0
        assert await failures(db) == []

        # The restarted process handles every event once.
        healthy = NotesProjection()
        assert (
            await ProjectionRunner(db, store, [healthy], settings.Projections).catch_up(healthy)
            == 8
        )
        assert healthy.calls == list(range(1, 9))
        assert len((await snapshot(db, notes_table))["test_notes"]) == 8


async def let_retry_time_pass(db: Any, name: str) -> None:
    """Move the projection's retry time into the past, as if RetryFailedAfter had elapsed."""
    async with db.write() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(
            update(projection_states).where(projection_states.c.name == name).values(retry_at=past)
        )


async def test_failed_event_is_retried_after_retry_failed_after(database: dict[str, Any]) -> None:
    settings = runner_settings(database, RetryFailedAfter="1h")
    async with bare_store(settings) as (db, store):
        projection = NotesProjection(fail_titles=["flaky"], failures_left=2)
        await build(db, store, projection)
        await store.push(note("a", NoteAdded("before")), creator="test")
        await store.push(note("b", NoteAdded("flaky")), creator="test")
        await store.push(note("c", NoteAdded("after")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        # The failure stops the projection before the event, with a retry time.
        started = datetime.now(UTC)
        assert await runner.catch_up(projection) == 1
        assert await position_of(db, projection.name) == 1
        async with db.read() as conn:
            state = await get_state(conn, projection.name)
        assert state is not None and state.retry_at is not None
        assert (
            started + timedelta(hours=1) <= state.retry_at <= datetime.now(UTC) + timedelta(hours=1)
        )
        summary = [(f["position"], f["failure_count"], f["parked"]) for f in await failures(db)]
        assert summary == [(2, 1, False)]
        # Not before RetryFailedAfter.
        assert await runner.catch_up(projection) == 0
        assert [f["failure_count"] for f in await failures(db)] == [1]

        await let_retry_time_pass(db, projection.name)
        assert await runner.catch_up(projection) == 0  # second failure
        await let_retry_time_pass(db, projection.name)
        assert await runner.catch_up(projection) == 2  # third try succeeds, then "after"

        titles = [r["title"] for r in (await snapshot(db, notes_table))["test_notes"]]
        assert titles == ["before", "flaky", "after"]
        assert await position_of(db, projection.name) == 3
        # An event that finally went through is no longer listed as failing.
        assert await failures(db) == []


async def test_running_runner_retries_without_being_woken(database: dict[str, Any]) -> None:
    settings = runner_settings(database, RequeueEvery="1h", RetryFailedAfter="100ms")
    async with bare_store(settings) as (db, store):
        projection = NotesProjection(fail_titles=["flaky"], failures_left=1)
        await build(db, store, projection)
        await store.push(note("b", NoteAdded("flaky")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)
        task = asyncio.create_task(runner.run())
        try:
            rows = await notes_soon(db)
            assert [r["title"] for r in rows] == ["flaky"]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_failed_event_is_parked_after_max_failures(database: dict[str, Any]) -> None:
    settings = runner_settings(
        database, RetryFailedAfter="0s", Customizations={"test_notes": {"MaxFailureCount": 3}}
    )
    async with bare_store(settings) as (db, store):
        projection = NotesProjection(fail_titles=["poison"])
        await build(db, store, projection)
        await store.push(note("a", NoteAdded("before")), creator="test")
        await store.push(note("b", NoteAdded("poison")), creator="test")
        await store.push(note("c", NoteAdded("after")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        handled = [await runner.catch_up(projection) for _ in range(3)]

        assert handled == [1, 0, 2]  # fail, fail, parked on the third failure and go on
        assert [r["title"] for r in (await snapshot(db, notes_table))["test_notes"]] == [
            "before",
            "after",
        ]
        assert await position_of(db, projection.name) == 3
        [parked] = await failures(db)
        assert (
            parked["position"],
            parked["event_type"],
            parked["failure_count"],
            parked["parked"],
        ) == (
            2,
            "note.added",
            3,
            True,
        )
        assert "cannot project 'poison'" in parked["error"]
        status = SimpleNamespace(db=db, store=store, projections=[projection])
        assert await projection_status(status) == [  # type: ignore[arg-type]
            {
                "name": "test_notes", "kind": "async", "version": 1, "status": "active",
                "position": 3, "lag": 0, "parked": 1,
            }
        ]  # fmt: skip
        # The parked event is not tried again.
        await store.push(note("d", NoteAdded("later")), creator="test")
        assert await runner.catch_up(projection) == 1
        assert projection.calls.count(2) == 3


async def test_event_failing_in_the_database_fails_alone(database: dict[str, Any]) -> None:
    """A statement the database refuses (a NULL title) costs only its own event."""
    settings = runner_settings(database, MaxFailureCount=1)
    async with bare_store(settings) as (db, store):
        projection = NotesProjection()
        await build(db, store, projection)
        await store.push(note("a", NoteAdded("before")), creator="test")
        await store.push(note("b", NoteAdded(None)), creator="test")  # type: ignore[arg-type]
        await store.push(note("c", NoteAdded("after")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        assert await runner.catch_up(projection) == 3

        assert [r["id"] for r in (await snapshot(db, notes_table))["test_notes"]] == ["a", "c"]
        [parked] = await failures(db)
        assert parked["position"] == 2 and parked["parked"]
        assert "IntegrityError" in parked["error"]
        assert await position_of(db, projection.name) == 3


async def test_bulk_limit_per_projection_is_honoured(database: dict[str, Any]) -> None:
    settings = runner_settings(
        database, BulkLimit=100, Customizations={"test_notes": {"BulkLimit": 4}}
    )
    async with bare_store(settings) as (db, store):
        projection = NotesProjection()
        await build(db, store, projection)
        for i in range(10):
            await store.push(note(f"n{i}", NoteAdded(f"note {i}")), creator="test")
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        assert await runner.process_batch(projection) == (4, True)
        assert await position_of(db, projection.name) == 4
        assert await runner.process_batch(projection) == (4, True)
        assert await runner.process_batch(projection) == (2, False)
        assert await position_of(db, projection.name) == 10
        assert settings.Projections.bulk_limit("other") == 100


async def test_runner_waits_while_its_projection_is_outdated(database: dict[str, Any]) -> None:
    """A process running a newer version leaves the projection to setup's rebuild."""

    class NotesV2(NotesProjection):
        version = 2

    settings = runner_settings(database)
    async with bare_store(settings) as (db, store):
        await build(db, store, NotesProjection())
        await store.push(note("a", NoteAdded("a")), creator="test")
        newer = NotesV2()
        assert await ProjectionRunner(db, store, [newer], settings.Projections).catch_up(newer) == 0
        assert newer.calls == []
        assert await position_of(db, newer.name) == 0
