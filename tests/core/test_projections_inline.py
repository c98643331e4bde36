"""Inline projections: written in the push transaction, or the push fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from donjon.core.eventstore.schema import events
from donjon.core.projections.inline import InlineProjections
from donjon.core.projections.rebuild import rebuild
from donjon.core.projections.status import projection_status
from tests.conftest import make_settings
from tests.core.test_projections_support import (
    FolderEmptied,
    InlineNotesProjection,
    NoteAdded,
    NoteMoved,
    NoteRenamed,
    NoteTagged,
    bare_store,
    build,
    note,
    notes_table,
    snapshot,
    tags_table,
)

pytestmark = pytest.mark.anyio


async def test_inline_projection_rows_are_visible_right_after_push(
    database: dict[str, Any],
) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        projection = InlineNotesProjection()
        await build(db, store, projection)
        store.inline_handlers.append(InlineProjections([projection]))

        await store.push(note("n1", NoteAdded("first"), NoteTagged("a")), creator="test")
        assert (await snapshot(db, notes_table))["test_notes"] == [
            {"id": "n1", "title": "first", "folder": None, "position": 1}
        ]
        await store.push(note("n1", NoteRenamed("second"), NoteMoved("inbox")), creator="test")

        rows = await snapshot(db, notes_table, tags_table)
        assert rows["test_notes"] == [
            {"id": "n1", "title": "second", "folder": "inbox", "position": 4}
        ]
        assert rows["test_note_tags"] == [{"note_id": "n1", "tag": "a", "folder": "inbox"}]


async def test_failing_inline_projection_fails_the_push_and_writes_nothing(
    database: dict[str, Any],
) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        projection = InlineNotesProjection(fail_titles=["boom"])
        await build(db, store, projection)
        store.inline_handlers.append(InlineProjections([projection]))
        await store.push(note("n1", NoteAdded("fine")), creator="test")

        with pytest.raises(RuntimeError, match="cannot project 'boom'"):
            # The tag is written before the failing rename: it must vanish too.
            await store.push(
                [note("n2", NoteAdded("other"), NoteTagged("t")), note("n1", NoteRenamed("boom"))],
                creator="test",
            )

        async with db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(events))).scalar_one() == 1
        rows = await snapshot(db, notes_table, tags_table)
        assert rows == {
            "test_notes": [{"id": "n1", "title": "fine", "folder": None, "position": 1}],
            "test_note_tags": [],
        }
        # The store is still usable and the projection still follows it.
        await store.push(note("n1", NoteRenamed("better")), creator="test")
        assert (await snapshot(db, notes_table))["test_notes"][0]["title"] == "better"


async def test_push_during_a_rebuild_is_left_to_the_rebuild(database: dict[str, Any]) -> None:
    """Pushes do not write half-built tables: the rebuild replays their events in order.

    Written at push time, the move below would put the note in "work" before
    the replay reaches the older "empty work" event, which would then delete it.
    """
    async with bare_store(make_settings(database)) as (db, store):
        await store.push(note("n1", NoteAdded("first", "inbox")), creator="test")
        await store.push(note("other", FolderEmptied("work")), creator="test")
        projection = InlineNotesProjection()
        store.inline_handlers.append(InlineProjections([projection]))
        with pytest.raises(Interrupted):  # replayed the first event only
            await rebuild(db, store, projection, bulk_limit=1, progress=stop_after_one_batch())
        assert [r["folder"] for r in (await snapshot(db, notes_table))["test_notes"]] == ["inbox"]

        await store.push(note("n1", NoteMoved("work")), creator="test")

        assert [r["folder"] for r in (await snapshot(db, notes_table))["test_notes"]] == ["inbox"]
        await rebuild(db, store, projection, bulk_limit=1)
        assert (await snapshot(db, notes_table))["test_notes"] == [
            {"id": "n1", "title": "first", "folder": "work", "position": 3}
        ]
        # Active again: the next push writes at once.
        await store.push(note("n1", NoteRenamed("now")), creator="test")
        assert (await snapshot(db, notes_table))["test_notes"][0]["title"] == "now"


class Interrupted(Exception):
    pass


def stop_after_one_batch() -> Callable[[int, int], None]:
    calls = [0]

    def progress(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 2:  # the first call reports the start
            raise Interrupted()

    return progress


async def test_push_is_refused_by_a_process_running_an_older_projection_version(
    database: dict[str, Any],
) -> None:
    """A newer version of the projection owns the tables: stale code must not write them."""

    class NotesV2(InlineNotesProjection):
        version = 2

    async with bare_store(make_settings(database)) as (db, store):
        await build(db, store, NotesV2())
        store.inline_handlers.append(InlineProjections([InlineNotesProjection()]))

        with pytest.raises(Exception, match="version 2"):
            await store.push(note("n1", NoteAdded("first")), creator="test")
        async with db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(events))).scalar_one() == 0


async def test_inline_projection_status_shows_no_lag(runtime: Any) -> None:
    rows = {r["name"]: r for r in await projection_status(runtime)}
    head = await runtime.store.max_position()
    assert rows["instances"] == {
        "name": "instances",
        "kind": "inline",
        "version": 1,
        "status": "active",
        "position": head,
        "lag": 0,
        "parked": 0,
    }
