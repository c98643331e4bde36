"""Inline projections: written in the push transaction, so reads after a command see it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.errors import DonjonError
from donjon.core.events import StoredEvent
from donjon.core.projections.base import Projection
from donjon.core.projections.state import ACTIVE, states_of
from donjon.core.projections.statements import apply_statements


class ProjectionVersionError(DonjonError):
    """This process runs an older version of a projection than the one the store holds."""


class InlineProjections:
    """The push-time handler (`EventStore.inline_handlers`) of all inline projections.

    A failing inline projection fails the push: a command never commits events
    whose read model could not be written.

    Each push reads the state of the projections its events concern (the push
    lock is held, so a rebuild cannot switch state under it):

    - active at this version: the push writes the rows;
    - not built yet, rebuilding (at any version), or active at an older
      version: the push leaves the tables alone, because the pending or
      running rebuild replays these events itself, in order (writing
      half-built tables could let a replayed older event act on a newer row);
    - active at a newer version: the push fails with ProjectionVersionError.
      This process's handlers would write rows the newer code does not
      expect, and skipping would lose the events for good.
    """

    def __init__(self, projections: Iterable[Projection]) -> None:
        self.by_type: dict[str, list[Projection]] = {}
        for projection in projections:
            if projection.inline:
                for event_type in projection.event_types:
                    self.by_type.setdefault(event_type, []).append(projection)

    async def __call__(self, conn: AsyncConnection, stored: list[StoredEvent]) -> None:
        concerned = {p.name: p for event in stored for p in self.by_type.get(event.type, ())}
        if not concerned:
            return
        states = await states_of(conn, list(concerned))
        writable: set[str] = set()
        for name, projection in concerned.items():
            state = states.get(name)
            if state is None or state.status != ACTIVE or state.version < projection.version:
                continue
            if state.version > projection.version:
                raise ProjectionVersionError(
                    f"projection {name} is at version {state.version} in the store but this"
                    f" process runs version {projection.version}; upgrade this process"
                )
            writable.add(name)
        for event in stored:
            for projection in self.by_type.get(event.type, ()):
                if projection.name in writable:
                    await apply_statements(conn, projection.reduce(event))
