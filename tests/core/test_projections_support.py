"""What the projection tests share: note events, a notes projection, a bare store.

No tests live here. The notes projection is a small, complete read model:
notes keyed by id, tags keyed by (note, tag), a removal that cascades with a
`RemoveWhere` and a rename that patches many rows with a `PatchWhere`. Its
tables live in their own MetaData, so nothing here leaks into the core's
`projection_metadata`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.events import Aggregate, AggregateChanges, Event, EventRegistry, StoredEvent
from donjon.core.eventstore.store import EventStore
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.rebuild import rebuild
from donjon.core.projections.statements import (
    Patch,
    PatchWhere,
    Put,
    Remove,
    RemoveWhere,
    Statement,
)
from donjon.core.settings import Settings
from donjon.core.setup.init import create_tables

NOTE = "note"
INSTANCE = "test-instance"

test_metadata = MetaData()

notes_table = Table(
    "test_notes",
    test_metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("folder", Text, nullable=True),
    Column("position", BigInteger, nullable=False),
)

tags_table = Table(
    "test_note_tags",
    test_metadata,
    Column("note_id", Text, primary_key=True),
    Column("tag", Text, primary_key=True),
    Column("folder", Text, nullable=True),
)

# One row per handled event and a counter: the two-process test's evidence.
handled_table = Table(
    "test_handled",
    test_metadata,
    Column("position", BigInteger, primary_key=True),
    Column("handler", Text, nullable=False),
)
counter_table = Table(
    "test_counter",
    test_metadata,
    Column("id", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class NoteAdded(Event):
    TYPE = "note.added"
    AGGREGATE_TYPE = NOTE
    title: str
    folder: str | None = None


@dataclass(frozen=True)
class NoteRenamed(Event):
    TYPE = "note.renamed"
    AGGREGATE_TYPE = NOTE
    title: str


@dataclass(frozen=True)
class NoteTagged(Event):
    TYPE = "note.tagged"
    AGGREGATE_TYPE = NOTE
    tag: str


@dataclass(frozen=True)
class NoteMoved(Event):
    """Moves the note and its tags into `folder` (a PatchWhere over the tags)."""

    TYPE = "note.moved"
    AGGREGATE_TYPE = NOTE
    folder: str


@dataclass(frozen=True)
class NoteRemoved(Event):
    TYPE = "note.removed"
    AGGREGATE_TYPE = NOTE


@dataclass(frozen=True)
class FolderEmptied(Event):
    """Removes every note of a folder (a RemoveWhere)."""

    TYPE = "note.folder.emptied"
    AGGREGATE_TYPE = NOTE
    folder: str


NOTE_EVENTS: list[type[Event]] = [
    NoteAdded,
    NoteRenamed,
    NoteTagged,
    NoteMoved,
    NoteRemoved,
    FolderEmptied,
]


class NotesProjection(Projection):
    """Notes and their tags; async unless a subclass says `inline = True`.

    `fail_titles` makes the handler raise for events whose title is listed;
    `failures_left`, when set, counts down how many times it still raises.
    """

    name = "test_notes"
    version = 1
    tables = (notes_table, tags_table)

    def __init__(
        self, *, fail_titles: Sequence[str] = (), failures_left: int | None = None
    ) -> None:
        super().__init__()
        self.fail_titles = set(fail_titles)
        self.failures_left = failures_left
        self.calls: list[int] = []

    def _maybe_fail(self, event: StoredEvent) -> None:
        if event.payload.get("title") in self.fail_titles:
            if self.failures_left is None or self.failures_left > 0:
                if self.failures_left is not None:
                    self.failures_left -= 1
                raise RuntimeError(f"cannot project {event.payload['title']!r}")

    @handles(NoteAdded.TYPE)
    def added(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        self._maybe_fail(e)
        row = {"id": e.aggregate_id, "title": e.payload["title"], "folder": e.payload.get("folder")}
        return [Put(notes_table, {**row, "position": e.position})]

    @handles(NoteRenamed.TYPE)
    def renamed(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        self._maybe_fail(e)
        return [
            Patch(
                notes_table,
                {"id": e.aggregate_id},
                {"title": e.payload["title"], "position": e.position},
            )
        ]

    @handles(NoteTagged.TYPE)
    def tagged(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        return [
            Put(tags_table, {"note_id": e.aggregate_id, "tag": e.payload["tag"], "folder": None})
        ]

    @handles(NoteMoved.TYPE)
    def moved(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        folder = e.payload["folder"]
        return [
            Patch(notes_table, {"id": e.aggregate_id}, {"folder": folder, "position": e.position}),
            PatchWhere(tags_table, {"note_id": e.aggregate_id}, {"folder": folder}),
        ]

    @handles(NoteRemoved.TYPE)
    def removed(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        return [
            Remove(notes_table, {"id": e.aggregate_id}),
            RemoveWhere(tags_table, {"note_id": e.aggregate_id}),
        ]

    @handles(FolderEmptied.TYPE)
    def emptied(self, e: StoredEvent) -> list[Statement]:
        self.calls.append(e.position)
        folder = e.payload["folder"]
        return [
            RemoveWhere(notes_table, {"folder": folder}),
            RemoveWhere(tags_table, {"folder": folder}),
        ]


class InlineNotesProjection(NotesProjection):
    inline = True


class CountingProjection(Projection):
    """One row per handled event (position is the key) and a counter incremented by SQL."""

    name = "test_counting"
    version = 1
    tables = (handled_table, counter_table)

    def __init__(self, handler: str = "") -> None:
        super().__init__()
        self.handler = handler

    @handles(NoteAdded.TYPE)
    def added(self, e: StoredEvent) -> list[Statement]:
        return [
            Put(handled_table, {"position": e.position, "handler": self.handler}),
            Patch(counter_table, {"id": 1}, {"count": counter_table.c["count"] + 1}),
        ]


def note(note_id: str, *events: Event, expected: int | None = None) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(NOTE, note_id, INSTANCE, INSTANCE), events, expected_sequence=expected
    )


def note_registry() -> EventRegistry:
    registry = EventRegistry()
    for cls in NOTE_EVENTS:
        registry.register(cls)
    return registry


@asynccontextmanager
async def bare_store(settings: Settings) -> AsyncIterator[tuple[Database, EventStore]]:
    """A database with the core tables and an event store that knows the note events."""
    db = Database.from_settings(settings.Database)
    try:
        await create_tables(db)
        yield db, EventStore(db, note_registry())
    finally:
        await db.dispose()


async def build(db: Database, store: EventStore, projection: Projection) -> None:
    """Create the projection's tables and mark it active (what setup does)."""
    await rebuild(db, store, projection)


async def table_rows(conn: AsyncConnection, table: Table) -> list[dict[str, Any]]:
    """Every row of `table`, sorted by primary key, as plain dicts."""
    keys = [c for c in table.primary_key.columns]
    rows = await conn.execute(select(table).order_by(*keys))
    return [dict(r._mapping) for r in rows]


async def snapshot(db: Database, *tables: Table) -> dict[str, list[dict[str, Any]]]:
    async with db.read() as conn:
        return {t.name: await table_rows(conn, t) for t in tables}
