"""The event store: one append-only table, unique constraints, ordered reads."""

from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.store import EventStore

__all__ = ["EventQuery", "EventStore"]
