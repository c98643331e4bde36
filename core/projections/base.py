"""Projections turn events into read-model tables.

A projection names the events it handles with `@handles` on plain methods that
take a StoredEvent and return statements (see `statements`)::

    class Users(Projection):
        name = "users"
        version = 1
        inline = True
        tables = (users_table,)

        @handles("user.added")
        def added(self, event):
            return [Put(users_table, {"id": event.aggregate_id, ...})]

`inline = True` projections are written in the push transaction (commands and
logins read them at once); the others are async: caught up after commit by a
runner, their position committed with their rows. Raising `version` makes
setup rebuild the projection from the whole store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from sqlalchemy import MetaData, Table

from donjon.core.events import StoredEvent
from donjon.core.projections.statements import Patch, Put, Statement

# Read-model tables of every projection; kept apart from the core tables so a
# rebuild can drop and recreate a projection's tables alone.
projection_metadata = MetaData()

Handler = Callable[[Any, StoredEvent], Sequence[Statement] | None]


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Mark a method as the reducer of these event types."""

    def mark(fn: Handler) -> Handler:
        fn.__donjon_handles__ = event_types  # type: ignore[attr-defined]
        return fn

    return mark


class Projection:
    """A read model: its name, version, kind, tables and one handler per event type.

    Handlers must be pure functions of the event: they may run more than once
    for one event (a batch redone after a database error, a rebuild).
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    inline: ClassVar[bool] = False
    tables: ClassVar[tuple[Table, ...]] = ()

    def __init__(self) -> None:
        if not isinstance(getattr(self, "name", None), str) or not self.name:
            raise TypeError(f"{type(self).__qualname__} needs a class constant `name`")
        if not isinstance(self.version, int) or self.version < 1:
            raise TypeError(f"projection {self.name}: `version` must be a positive integer")
        self._handlers: dict[str, Callable[[StoredEvent], Sequence[Statement] | None]] = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            for event_type in getattr(fn, "__donjon_handles__", ()):
                if event_type in self._handlers:
                    raise ValueError(f"projection {self.name}: two handlers for {event_type}")
                self._handlers[event_type] = getattr(self, attr)

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event types this projection handles (the only ones it is given)."""
        return tuple(sorted(self._handlers))

    def reduce(self, event: StoredEvent) -> Sequence[Statement]:
        """The statements for `event`; none for a type without a handler."""
        handler = self._handlers.get(event.type)
        if handler is None:
            return ()
        return handler(event) or ()

    def __repr__(self) -> str:
        kind = "inline" if self.inline else "async"
        return f"<{kind} projection {self.name} v{self.version}>"


class AggregateRows(Projection):
    """A projection keeping one row per aggregate in `row_table`, keyed (instance_id, id).

    `_key` names an event's row (override it when the row is not the event's
    aggregate); `_new_row` puts it, `_touch` patches it, both stamping the
    event's time and sequence.
    """

    row_table: ClassVar[Table]

    @staticmethod
    def _key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    def _new_row(self, e: StoredEvent, values: dict[str, Any]) -> Put:
        stamps = {"created_at": e.created_at, "changed_at": e.created_at, "sequence": e.sequence}
        return Put(self.row_table, {**values, **self._key(e), **stamps})

    def _touch(self, e: StoredEvent, **values: object) -> Patch:
        stamps = {"changed_at": e.created_at, "sequence": e.sequence}
        return Patch(self.row_table, self._key(e), {**values, **stamps})
