"""Events: typed payloads, the registry of known types, and stored events.

An event type is a frozen dataclass with three class constants::

    @dataclass(frozen=True)
    class InstanceAdded(Event):
        TYPE = "instance.added"
        AGGREGATE_TYPE = "instance"
        name: str

Its fields are the JSON payload. `REVISION` (default 1) is stored with each
event; a class whose payload changed shape overrides `upcast` to read older
revisions. Types are registered through the `register_event_types` hook and
a push of an unregistered type is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from donjon.core.errors import UnknownEventTypeError


@dataclass(frozen=True)
class Event:
    """Base of every event payload class."""

    TYPE: ClassVar[str]
    AGGREGATE_TYPE: ClassVar[str]
    REVISION: ClassVar[int] = 1

    def payload(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any], revision: int) -> Self:
        payload = cls.upcast(payload, revision)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})

    @classmethod
    def upcast(cls, payload: dict[str, Any], revision: int) -> dict[str, Any]:
        """Turn a payload stored at an older `revision` into the current shape."""
        return payload


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Identifies the stream an event belongs to."""

    type: str
    id: str
    instance_id: str
    # The resource owner (an organization id; the instance id for instance-level data).
    owner: str = ""


@dataclass(frozen=True, slots=True)
class AddUnique:
    """Claim a unique value in the same transaction as the events."""

    unique_type: str
    unique_field: str
    error_message: str
    # True for values unique across all instances (instance domains).
    is_global: bool = False


@dataclass(frozen=True, slots=True)
class RemoveUnique:
    unique_type: str
    unique_field: str
    is_global: bool = False


@dataclass(frozen=True, slots=True)
class AggregateChanges:
    """Events to append to one aggregate in one push.

    `expected_sequence` is the sequence the command's write model saw: the push
    fails with ConcurrencyError when the aggregate has moved on. None appends
    after whatever is there. `unique` claims and releases values in the same
    transaction (see docs/eventstore.md).
    """

    aggregate: Aggregate
    events: tuple[Event, ...]
    expected_sequence: int | None = None
    unique: tuple[AddUnique | RemoveUnique, ...] = ()

    def __init__(
        self,
        aggregate: Aggregate,
        events: Iterable[Event],
        expected_sequence: int | None = None,
        unique: Iterable[AddUnique | RemoveUnique] = (),
    ) -> None:
        object.__setattr__(self, "aggregate", aggregate)
        object.__setattr__(self, "events", tuple(events))
        object.__setattr__(self, "expected_sequence", expected_sequence)
        object.__setattr__(self, "unique", tuple(unique))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store holds it."""

    position: int
    instance_id: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    type: str
    revision: int
    payload: dict[str, Any]
    creator: str
    owner: str
    created_at: datetime


@dataclass
class EventRegistry:
    """The event types known to this process, by type name."""

    types: dict[str, type[Event]] = field(default_factory=dict)

    def register(self, cls: type[Event]) -> None:
        for attr in ("TYPE", "AGGREGATE_TYPE"):
            if not isinstance(getattr(cls, attr, None), str):
                raise TypeError(f"{cls.__qualname__} needs a class constant {attr}")
        known = self.types.get(cls.TYPE)
        if known is not None and known is not cls:
            raise ValueError(
                f"event type {cls.TYPE} registered twice:"
                f" {known.__qualname__} and {cls.__qualname__}"
            )
        self.types[cls.TYPE] = cls

    def check(self, event: Event) -> None:
        if self.types.get(event.TYPE) is not type(event):
            raise UnknownEventTypeError(f"event type {event.TYPE!r} is not registered")

    def decode(self, stored: StoredEvent) -> Event:
        cls = self.types.get(stored.type)
        if cls is None:
            raise UnknownEventTypeError(f"event type {stored.type!r} is not registered")
        return cls.from_payload(stored.payload, stored.revision)

    def __contains__(self, type_name: str) -> bool:
        return type_name in self.types
