"""Write models: the state a command validates against, reduced from an aggregate's events.

A write model names the events it folds with `@applies` on plainly named
methods; events of other types only advance its sequence::

    class OrgState(WriteModel):
        aggregate_type = "org"
        name = ""

        @applies("org.added", "org.changed")
        def named(self, event):
            self.name = event.payload["name"]

    state = await OrgState.load(store, instance_id, org_id)
    if not state.exists: raise not_found(...)
    changes = AggregateChanges(state.aggregate(), [...], expected_sequence=state.sequence)

Pushing with `expected_sequence=state.sequence` makes the push fail with
ConcurrencyError when another command changed the aggregate in between, so a
check is never made against stale state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self

from donjon.core.events import Aggregate, StoredEvent
from donjon.core.eventstore.store import EventStore

Reducer = Callable[[Any, StoredEvent], None]


def applies(*event_types: str) -> Callable[[Reducer], Reducer]:
    """Mark a method as the reducer of these event types in a write model."""

    def mark(fn: Reducer) -> Reducer:
        fn.__donjon_applies__ = event_types  # type: ignore[attr-defined]
        return fn

    return mark


class WriteModel:
    """One aggregate's state as commands need it; `exists` is up to the subclass."""

    aggregate_type: ClassVar[str]
    _reducers: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        reducers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                for event_type in getattr(fn, "__donjon_applies__", ()):
                    reducers[event_type] = attr
        cls._reducers = reducers

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        self.instance_id = instance_id
        self.id = aggregate_id
        self.owner = ""
        self.sequence = 0
        self.created_at = None
        self.changed_at = None

    def apply(self, event: StoredEvent) -> None:
        self.sequence = event.sequence
        self.owner = event.owner
        if self.created_at is None:
            self.created_at = event.created_at
        self.changed_at = event.created_at
        name = self._reducers.get(event.type)
        if name is not None:
            getattr(self, name)(event)

    def aggregate(self, owner: str | None = None) -> Aggregate:
        """The aggregate to push to; `owner` only matters for its first event."""
        return Aggregate(
            self.aggregate_type,
            self.id,
            self.instance_id,
            owner if owner is not None else self.owner,
        )

    @classmethod
    async def load(cls, store: EventStore, instance_id: str, aggregate_id: str) -> Self:
        state = cls(instance_id, aggregate_id)
        for event in await store.aggregate_events(instance_id, cls.aggregate_type, aggregate_id):
            state.apply(event)
        return state
