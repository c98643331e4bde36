"""Rebuilds: at setup when a projection's version changes, resumable at any point."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from donjon.core.events import AggregateChanges, Event
from donjon.core.eventstore.store import EventStore
from donjon.core.plugins import get_plugin_manager, hookimpl
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.inline import InlineProjections
from donjon.core.projections.rebuild import rebuild
from donjon.core.projections.runner import ProjectionRunner
from donjon.core.projections.state import (
    ACTIVE,
    REBUILDING,
    failure_counts,
    get_state,
    record_failure,
)
from donjon.core.projections.statements import Put, Statement
from donjon.core.runtime import build_runtime
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import MASTERKEY, make_settings
from tests.core.test_projections_support import (
    FolderEmptied,
    InlineNotesProjection,
    NoteAdded,
    NoteMoved,
    NoteRemoved,
    NoteRenamed,
    NotesProjection,
    NoteTagged,
    bare_store,
    note,
    note_registry,
    notes_table,
    snapshot,
    tags_table,
)

pytestmark = pytest.mark.anyio


def random_history(seed: int, count: int) -> list[AggregateChanges]:
    """Pushes touching a few notes with every kind of statement the projection writes."""
    rng = random.Random(seed)
    kinds = ["add", "rename", "tag", "move", "remove", "empty"]
    pushes: list[AggregateChanges] = []
    for i in range(count):
        note_id = f"n{rng.randrange(8)}"
        kind = rng.choices(kinds, [4, 3, 3, 2, 1, 1])[0]
        event: Event
        if kind == "add":
            event = NoteAdded(f"title {i}", rng.choice(["inbox", "work", None]))
        elif kind == "rename":
            event = NoteRenamed(f"renamed {i}")
        elif kind == "tag":
            event = NoteTagged(rng.choice(["red", "blue", "green"]))
        elif kind == "move":
            event = NoteMoved(rng.choice(["inbox", "work", "archive"]))
        elif kind == "remove":
            event = NoteRemoved()
        else:
            event = FolderEmptied(rng.choice(["inbox", "work"]))
        pushes.append(note(note_id, event))
    return pushes


async def push_all(store: EventStore, pushes: list[AggregateChanges]) -> None:
    for changes in pushes:
        await store.push(changes, creator="test")


class Interrupted(Exception):
    """Raised by a progress callback: the operator pressed ^C after k batches."""


def stop_after(batches: int) -> Any:
    calls = [0]

    def progress(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] > batches:  # the first call reports the start, before any batch
            raise Interrupted(f"after {batches} batches")

    return progress


async def test_interrupted_rebuild_resumes_to_the_same_tables(database: dict[str, Any]) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        await push_all(store, random_history(seed=7, count=90))
        projection = NotesProjection()
        await rebuild(db, store, projection, bulk_limit=8)
        expected = await snapshot(db, notes_table, tags_table)
        assert expected["test_notes"] and expected["test_note_tags"]

        for batches in (0, 1, 4, 11, 12):
            with pytest.raises(Interrupted):
                await rebuild(
                    db, store, projection, bulk_limit=8, restart=True, progress=stop_after(batches)
                )
            async with db.read() as conn:
                state = await get_state(conn, projection.name)
            assert state is not None and state.status == REBUILDING

            result = await rebuild(db, store, projection, bulk_limit=8)

            assert await snapshot(db, notes_table, tags_table) == expected, (
                f"interrupted after {batches}"
            )
            assert result.resumed_from == state.position
            assert result.position == 90
            # Together the two runs replayed every event once.
            assert result.events == 90 - min(8 * batches, 90)


async def test_two_processes_resuming_one_rebuild_share_the_batches(
    database: dict[str, Any],
) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        await push_all(store, random_history(seed=5, count=60))
        projection = NotesProjection()
        await rebuild(db, store, projection, bulk_limit=5)
        expected = await snapshot(db, notes_table, tags_table)
        with pytest.raises(Interrupted):
            await rebuild(db, store, projection, bulk_limit=5, restart=True, progress=stop_after(1))

        first, second = await asyncio.gather(
            rebuild(db, store, NotesProjection(), bulk_limit=5),
            rebuild(db, store, NotesProjection(), bulk_limit=5),
        )

        assert first.events + second.events == 60 - 5  # no batch replayed twice
        assert await snapshot(db, notes_table, tags_table) == expected
        async with db.read() as conn:
            state = await get_state(conn, projection.name)
        assert state is not None and (state.status, state.position) == (ACTIVE, 60)


class CrashAt(NotesProjection):
    """Dies (a BaseException, like a SIGKILL mid-batch) when it reaches `position`."""

    def __init__(self, position: int) -> None:
        super().__init__()
        self.crash_position = position

    def reduce(self, event: Any) -> list[Statement]:
        if event.position == self.crash_position:
            raise KeyboardInterrupt()
        return list(super().reduce(event))


async def test_rebuild_killed_inside_a_batch_resumes_from_the_last_committed_batch(
    database: dict[str, Any],
) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        await push_all(store, random_history(seed=3, count=40))
        await rebuild(db, store, NotesProjection(), bulk_limit=6)
        expected = await snapshot(db, notes_table, tags_table)

        for crash_position in (1, 6, 7, 23, 40):
            with pytest.raises(KeyboardInterrupt):
                await rebuild(db, store, CrashAt(crash_position), bulk_limit=6, restart=True)
            resumed = NotesProjection()
            result = await rebuild(db, store, resumed, bulk_limit=6)
            assert result.resumed_from == (crash_position - 1) // 6 * 6
            assert resumed.calls[0] == result.resumed_from + 1  # nothing replayed twice
            assert await snapshot(db, notes_table, tags_table) == expected, (
                f"crash at {crash_position}"
            )


@pytest.mark.parametrize("kind", [InlineNotesProjection, NotesProjection], ids=["inline", "async"])
async def test_events_pushed_during_a_rebuild_all_reach_the_tables(
    database: dict[str, Any], kind: type[NotesProjection]
) -> None:
    settings = make_settings(database)
    async with bare_store(settings) as (db, store):
        history = random_history(seed=11, count=120)
        await push_all(store, history[:60])
        projection = kind()
        store.inline_handlers.append(InlineProjections([projection]))
        runner = ProjectionRunner(db, store, [projection], settings.Projections)

        async def pushes_meanwhile() -> None:
            for changes in history[60:]:
                await store.push(changes, creator="test")
                await asyncio.sleep(0)

        await asyncio.gather(rebuild(db, store, projection, bulk_limit=3), pushes_meanwhile())
        await runner.catch_up(projection)  # no-op for the inline one
        live = await snapshot(db, notes_table, tags_table)

        await rebuild(db, store, kind(), restart=True)
        assert live == await snapshot(db, notes_table, tags_table)


async def test_rebuild_forgets_the_failures_of_the_previous_build(database: dict[str, Any]) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        await push_all(store, random_history(seed=1, count=5))
        projection = NotesProjection()
        await rebuild(db, store, projection)
        [event] = await store.query(
            __import__("donjon.core.eventstore.query", fromlist=["x"]).EventQuery(limit=1)
        )
        async with db.write() as conn:
            await record_failure(conn, projection.name, event, "RuntimeError: old code", 1)

        await rebuild(db, store, projection, restart=True)

        async with db.read() as conn:
            assert await failure_counts(conn) == {}


# -- setup ---------------------------------------------------------------------------


class TitlesV1(Projection):
    name = "test_titles"
    version = 1
    tables = (notes_table,)

    @handles(NoteAdded.TYPE)
    def added(self, e: Any) -> list[Statement]:
        title = self.shape(e.payload["title"])
        return [Put(notes_table, {"id": e.aggregate_id, "title": title, "position": e.position})]

    def shape(self, title: str) -> str:
        return title


class TitlesV2(TitlesV1):
    version = 2

    def shape(self, title: str) -> str:
        return title.upper()


class NotesPlugin:
    """A third-party plugin in miniature: the note events and one projection."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection

    @hookimpl
    def register_event_types(self) -> list[Any]:
        return list(note_registry().types.values())

    @hookimpl
    def register_projections(self) -> list[Any]:
        return [self.projection]


def runtime_with(settings: Any, projection: Projection) -> Any:
    pm = get_plugin_manager(settings)
    pm.register(NotesPlugin(projection), name="test-notes")
    return build_runtime(settings, pm=pm, masterkey=MASTERKEY)


async def titles(db: Any) -> list[str]:
    return [r["title"] for r in (await snapshot(db, notes_table))["test_notes"]]


async def test_changed_projection_version_is_rebuilt_at_setup(database: dict[str, Any]) -> None:
    settings = make_settings(database)
    first = runtime_with(settings, TitlesV1())
    try:
        await create_tables(first.db)
        assert "projection.test_titles" in await SetupRunner(first).run()
        await first.store.push(
            [note("a", NoteAdded("alpha")), note("b", NoteAdded("beta"))], creator="test"
        )
        await first.runner.catch_up(first.projection("test_titles"))
        assert [r["title"] for r in (await snapshot(first.db, notes_table))["test_notes"]] == [
            "alpha",
            "beta",
        ]
        assert "projection.test_titles" not in await SetupRunner(first).run()
    finally:
        await first.close()

    second = runtime_with(settings, TitlesV2())
    try:
        ran = await SetupRunner(second).run()
        assert "projection.test_titles" in ran
        assert [r["title"] for r in (await snapshot(second.db, notes_table))["test_notes"]] == [
            "ALPHA",
            "BETA",
        ]
        async with second.db.read() as conn:
            state = await get_state(conn, "test_titles")
        assert state is not None and (state.version, state.status) == (2, ACTIVE)
        assert "projection.test_titles" not in await SetupRunner(second).run()
    finally:
        await second.close()
