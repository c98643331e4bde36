"""A user-like model for the benchmarks: events, a read-model table and its projection.

Shaped like ZITADEL's human users (and like donjon's own projections, see
`donjon.core.instance`): one aggregate per user, a handful of event types, and
a projection keeping one row per live user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Index, Integer, MetaData, PrimaryKeyConstraint, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.statements import Patch, Put, Remove

AGGREGATE = "user"
INSTANCE = "270000000000000001"
ORGS = [f"27100000000000{n:04d}" for n in range(10)]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UserAdded(Event):
    TYPE = "user.added"
    AGGREGATE_TYPE = AGGREGATE
    username: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    preferred_language: str = "en"


@dataclass(frozen=True)
class UserChanged(Event):
    TYPE = "user.changed"
    AGGREGATE_TYPE = AGGREGATE
    first_name: str
    last_name: str
    display_name: str


@dataclass(frozen=True)
class UserEmailChanged(Event):
    TYPE = "user.email.changed"
    AGGREGATE_TYPE = AGGREGATE
    email: str


@dataclass(frozen=True)
class UserLocked(Event):
    TYPE = "user.locked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserRemoved(Event):
    TYPE = "user.removed"
    AGGREGATE_TYPE = AGGREGATE


EVENT_TYPES: list[type[Event]] = [UserAdded, UserChanged, UserEmailChanged, UserLocked, UserRemoved]

# Not donjon's projection_metadata: the bench's table must never clash with a real one.
bench_metadata = MetaData()

users_table = Table(
    "bench_users",
    bench_metadata,
    Column("instance_id", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("first_name", Text, nullable=False),
    Column("last_name", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("preferred_language", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
    PrimaryKeyConstraint("instance_id", "id"),
    Index("bench_users_username", "instance_id", "username"),
)


class UsersProjection(Projection):
    """One row per live user, written like any donjon projection."""

    name = "bench_users"
    version = 1
    inline = True
    tables = (users_table,)

    @staticmethod
    def _key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    @handles(UserAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                users_table,
                {
                    "instance_id": e.instance_id,
                    "id": e.aggregate_id,
                    "owner": e.owner,
                    "username": p["username"],
                    "email": p["email"],
                    "first_name": p["first_name"],
                    "last_name": p["last_name"],
                    "display_name": p["display_name"],
                    "preferred_language": p.get("preferred_language", "en"),
                    "state": "active",
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(UserChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Patch(
                users_table,
                self._key(e),
                {
                    "first_name": p["first_name"],
                    "last_name": p["last_name"],
                    "display_name": p["display_name"],
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(UserEmailChanged.TYPE)
    def email_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                users_table,
                self._key(e),
                {"email": e.payload["email"], "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(UserLocked.TYPE)
    def locked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                users_table,
                self._key(e),
                {"state": "locked", "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(UserRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(users_table, self._key(e))]


def user_id(n: int) -> str:
    return f"{280000000000000000 + n}"


def added_payload(n: int) -> dict[str, str]:
    return {
        "username": f"user{n:07d}",
        "email": f"user{n:07d}@example.com",
        "first_name": f"Given{n % 9973}",
        "last_name": f"Family{n % 7919}",
        "display_name": f"Given{n % 9973} Family{n % 7919}",
        "preferred_language": "en",
    }


def changed_payload(n: int, version: int) -> dict[str, str]:
    return {
        "first_name": f"Given{(n + version) % 9973}",
        "last_name": f"Family{(n * version) % 7919}",
        "display_name": f"Given{(n + version) % 9973} Family{(n * version) % 7919}",
    }


def email_payload(n: int, version: int) -> dict[str, str]:
    return {"email": f"user{n:07d}.{version}@example.org"}


def at(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)
