"""Inline projections: written in the push transaction, so reads after a command see it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import StoredEvent
from donjon.core.projections.base import Projection
from donjon.core.projections.statements import apply_statements


class InlineProjections:
    """The push-time handler (`EventStore.inline_handlers`) of all inline projections.

    A failing inline projection fails the push: a command never commits events
    whose read model could not be written.
    """

    def __init__(self, projections: Iterable[Projection]) -> None:
        self.by_type: dict[str, list[Projection]] = {}
        for projection in projections:
            if projection.inline:
                for event_type in projection.event_types:
                    self.by_type.setdefault(event_type, []).append(projection)

    async def __call__(self, conn: AsyncConnection, stored: list[StoredEvent]) -> None:
        for event in stored:
            for projection in self.by_type.get(event.type, ()):
                await apply_statements(conn, projection.reduce(event))
