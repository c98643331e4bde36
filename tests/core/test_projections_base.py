"""What a projection class must declare, and how events find their handler."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from donjon.core.events import StoredEvent
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.statements import Put
from tests.core.test_projections_support import NoteAdded, NoteRenamed, notes_table


def stored(event_type: str, position: int = 1) -> StoredEvent:
    return StoredEvent(
        position, "i", "note", "n1", position, event_type, 1, {"title": "t"}, "test", "i",
        datetime.now(UTC),
    )  # fmt: skip


class Titles(Projection):
    name = "titles"

    @handles(NoteAdded.TYPE, NoteRenamed.TYPE)
    def title(self, e: StoredEvent) -> list[Any]:
        return [Put(notes_table, {"id": e.aggregate_id, "title": e.payload["title"]})]

    @handles("note.silent")
    def silent(self, e: StoredEvent) -> None:
        return None


def test_events_reach_their_handler_and_other_types_reduce_to_nothing() -> None:
    projection = Titles()
    assert projection.event_types == ("note.added", "note.renamed", "note.silent")
    assert projection.reduce(stored("note.renamed")) == [
        Put(notes_table, {"id": "n1", "title": "t"})
    ]
    assert projection.reduce(stored("note.silent")) == ()
    assert projection.reduce(stored("note.removed")) == ()


def test_projection_without_a_name_or_with_two_handlers_for_a_type_is_refused() -> None:
    class Nameless(Projection):
        pass

    class Twice(Titles):
        @handles(NoteAdded.TYPE)
        def again(self, e: StoredEvent) -> None:
            return None

    class Unversioned(Titles):
        version = 0

    with pytest.raises(TypeError, match="needs a class constant `name`"):
        Nameless()
    with pytest.raises(ValueError, match="two handlers for note.added"):
        Twice()
    with pytest.raises(TypeError, match="positive integer"):
        Unversioned()
