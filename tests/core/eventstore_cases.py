"""The events, aggregates and data the event store tests share.

The events are registered in a fresh `EventRegistry` per store (`registry()`),
never through plugins, so the tests see exactly these types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from donjon.core.events import AddUnique, Aggregate, Event, EventRegistry, StoredEvent
from donjon.core.eventstore import EventQuery, EventStore
from donjon.core.eventstore.schema import unique_constraints


@dataclass(frozen=True)
class AccountOpened(Event):
    TYPE = "account.opened"
    AGGREGATE_TYPE = "account"
    name: str
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountRenamedV1(Event):
    """`account.renamed` as revision 1 wrote it: the new name was `name`."""

    TYPE = "account.renamed"
    AGGREGATE_TYPE = "account"
    name: str


@dataclass(frozen=True)
class AccountRenamed(Event):
    """`account.renamed` today: revision 2 calls it `display_name`."""

    TYPE = "account.renamed"
    AGGREGATE_TYPE = "account"
    REVISION = 2
    display_name: str

    @classmethod
    def upcast(cls, payload: dict[str, Any], revision: int) -> dict[str, Any]:
        if revision < 2:
            return {"display_name": payload["name"]}
        return payload


@dataclass(frozen=True)
class AccountClosed(Event):
    TYPE = "account.closed"
    AGGREGATE_TYPE = "account"


@dataclass(frozen=True)
class TeamFormed(Event):
    TYPE = "team.formed"
    AGGREGATE_TYPE = "team"
    name: str


@dataclass(frozen=True)
class AccountAudited(Event):
    """Never registered."""

    TYPE = "account.audited"
    AGGREGATE_TYPE = "account"


@dataclass(frozen=True)
class ImpostorAccountOpened(Event):
    """Borrows a registered type name, but is not the registered class."""

    TYPE = "account.opened"
    AGGREGATE_TYPE = "account"
    name: str


def registry(*classes: type[Event]) -> EventRegistry:
    reg = EventRegistry()
    for cls in classes or (AccountOpened, AccountRenamed, AccountClosed, TeamFormed):
        reg.register(cls)
    return reg


def account(id: str = "acc-1", instance: str = "i1", owner: str = "org-a") -> Aggregate:
    return Aggregate("account", id, instance, owner)


def team(id: str = "team-1", instance: str = "i1", owner: str = "org-a") -> Aggregate:
    return Aggregate("team", id, instance, owner)


def username(value: str) -> AddUnique:
    return AddUnique("username", value, f"user name {value} is taken")


async def contents(store: EventStore) -> tuple[list[StoredEvent], list[tuple[str, ...]]]:
    """Everything a push can write: the events and the claimed unique values."""
    async with store.db.read() as conn:
        claimed = (await conn.execute(select(unique_constraints))).all()
    return await store.query(EventQuery()), sorted(tuple(r) for r in claimed)


# The seeded store: (aggregate, events, creator) pushed one by one. Eight events
# across two instances, both aggregate types, two owners and two creators.
SEED: list[tuple[Aggregate, list[Event], str]] = [
    (account("acc-1"), [AccountOpened("Ann"), AccountRenamed("Annie")], "alice"),
    (team("team-1"), [TeamFormed("Blue")], "bob"),
    (account("acc-2", "i2", "org-b"), [AccountOpened("Bea")], "bob"),
    (account("acc-1", owner="ignored"), [AccountClosed()], "bob"),
    (team("team-2", "i2", "org-b"), [TeamFormed("Red")], "alice"),
    (account("acc-3"), [AccountOpened("Cy"), AccountClosed()], "bob"),
]


# Each criterion with the events it must select out of the seeded ones.
Case = Callable[[list[StoredEvent]], tuple[EventQuery, list[StoredEvent]]]
CRITERIA: dict[str, Case] = {
    "instance_ids": lambda evs: (
        EventQuery(instance_ids=("i2",)),
        [e for e in evs if e.instance_id == "i2"],
    ),
    "aggregate_types": lambda evs: (
        EventQuery(aggregate_types=("team",)),
        [e for e in evs if e.aggregate_type == "team"],
    ),
    "aggregate_ids (any of)": lambda evs: (
        EventQuery(aggregate_ids=("acc-1", "team-2")),
        [e for e in evs if e.aggregate_id in ("acc-1", "team-2")],
    ),
    "event_types (any of)": lambda evs: (
        EventQuery(event_types=("account.opened", "account.closed")),
        [e for e in evs if e.type in ("account.opened", "account.closed")],
    ),
    "owners": lambda evs: (
        EventQuery(owners=("org-b",)),
        [e for e in evs if e.owner == "org-b"],
    ),
    "creators": lambda evs: (
        EventQuery(creators=("alice",)),
        [e for e in evs if e.creator == "alice"],
    ),
    "position_after": lambda evs: (
        EventQuery(position_after=evs[2].position),
        evs[3:],
    ),
    "position_at_most": lambda evs: (
        EventQuery(position_at_most=evs[2].position),
        evs[:3],
    ),
    "created_after (strictly)": lambda evs: (
        EventQuery(created_after=evs[3].created_at),
        [e for e in evs if e.created_at > evs[3].created_at],
    ),
    "created_before (strictly)": lambda evs: (
        EventQuery(created_before=evs[3].created_at),
        [e for e in evs if e.created_at < evs[3].created_at],
    ),
    "limit": lambda evs: (EventQuery(limit=2), evs[:2]),
    "descending": lambda evs: (EventQuery(descending=True), evs[::-1]),
    "descending with limit: the latest": lambda evs: (
        EventQuery(descending=True, limit=2),
        evs[::-1][:2],
    ),
    "every criterion at once (and)": lambda evs: (
        EventQuery(
            instance_ids=("i1",),
            aggregate_types=("account",),
            creators=("bob",),
            position_after=evs[0].position,
            position_at_most=evs[-1].position,
        ),
        [
            e
            for e in evs[1:]
            if e.instance_id == "i1" and e.aggregate_type == "account" and e.creator == "bob"
        ],
    ),
}
