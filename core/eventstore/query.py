"""Which events to read: a filter translated to one SELECT on the events table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from donjon.core.eventstore.schema import events


@dataclass(frozen=True)
class EventQuery:
    """Events matching every non-empty criterion, in position order.

    Each tuple matches any of its values; an empty tuple matches everything.
    """

    instance_ids: tuple[str, ...] = ()
    aggregate_types: tuple[str, ...] = ()
    aggregate_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    position_after: int | None = None
    position_at_most: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int | None = None
    descending: bool = False

    def select(self) -> Select:
        stmt = select(events)
        for column, values in (
            (events.c.instance_id, self.instance_ids),
            (events.c.aggregate_type, self.aggregate_types),
            (events.c.aggregate_id, self.aggregate_ids),
            (events.c.event_type, self.event_types),
            (events.c.owner, self.owners),
            (events.c.creator, self.creators),
        ):
            if len(values) == 1:
                stmt = stmt.where(column == values[0])
            elif values:
                stmt = stmt.where(column.in_(values))
        if self.position_after is not None:
            stmt = stmt.where(events.c.position > self.position_after)
        if self.position_at_most is not None:
            stmt = stmt.where(events.c.position <= self.position_at_most)
        if self.created_after is not None:
            stmt = stmt.where(events.c.created_at > self.created_after)
        if self.created_before is not None:
            stmt = stmt.where(events.c.created_at < self.created_before)
        order = events.c.position.desc() if self.descending else events.c.position
        stmt = stmt.order_by(order)
        if self.limit is not None:
            stmt = stmt.limit(self.limit)
        return stmt
