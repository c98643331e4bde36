"""Users: humans (people who log in) and machines (service accounts), one `user` aggregate.

User names are unique per instance (case-insensitive); a user's login name
is `username@<primary domain of its org>`. Events follow ZITADEL's names
(`user.human.added`, `user.machine.added`, `user.locked`, ...).

This module holds the events, the write model and the read model; the
commands that validate input against policies live in `user_commands`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Boolean, Column, Index, Integer, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import AddUnique, Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

AGGREGATE = "user"
HUMAN, MACHINE = "human", "machine"
# States, named as ZITADEL's API reports them (USER_STATE_<STATE>).
ACTIVE, INACTIVE, LOCKED, INITIAL = "active", "inactive", "locked", "initial"

USERNAME_TAKEN = "Errors.User.AlreadyExists"
USERNAME_UNIQUE = "usernames"


@dataclass(frozen=True)
class HumanAdded(Event):
    TYPE = "user.human.added"
    AGGREGATE_TYPE = AGGREGATE
    username: str
    first_name: str
    last_name: str
    nick_name: str = ""
    display_name: str = ""
    preferred_language: str = ""
    gender: str = ""
    email: str = ""
    email_verified: bool = False
    phone: str = ""
    phone_verified: bool = False
    # argon2id (or an imported bcrypt) hash; empty when the user has no password yet.
    password_hash: str = ""
    password_change_required: bool = False


@dataclass(frozen=True)
class MachineAdded(Event):
    TYPE = "user.machine.added"
    AGGREGATE_TYPE = AGGREGATE
    username: str
    name: str
    description: str = ""
    # bearer (opaque) or jwt
    access_token_type: str = "bearer"


@dataclass(frozen=True)
class PersonalAccessTokenAdded(Event):
    TYPE = "user.personal.access.token.added"
    AGGREGATE_TYPE = AGGREGATE
    token_id: str
    # SHA-256 of the token (see donjon.core.identity.secrets)
    digest: str
    # RFC 3339, empty for never
    expiration: str = ""
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PersonalAccessTokenRemoved(Event):
    TYPE = "user.personal.access.token.removed"
    AGGREGATE_TYPE = AGGREGATE
    token_id: str


@dataclass(frozen=True)
class UserRemoved(Event):
    TYPE = "user.removed"
    AGGREGATE_TYPE = AGGREGATE
    username: str = ""


EVENT_TYPES: list[type[Event]] = [
    HumanAdded,
    MachineAdded,
    PersonalAccessTokenAdded,
    PersonalAccessTokenRemoved,
    UserRemoved,
]

users_table = Table(
    "users",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("resource_owner", Text, nullable=False),
    Column("type", Text, nullable=False),  # human | machine
    Column("state", Text, nullable=False),
    Column("username", Text, nullable=False),
    # humans
    Column("first_name", Text, nullable=False, default=""),
    Column("last_name", Text, nullable=False, default=""),
    Column("nick_name", Text, nullable=False, default=""),
    Column("display_name", Text, nullable=False, default=""),
    Column("preferred_language", Text, nullable=False, default=""),
    Column("gender", Text, nullable=False, default=""),
    Column("email", Text, nullable=False, default=""),
    Column("email_verified", Boolean, nullable=False, default=False),
    Column("phone", Text, nullable=False, default=""),
    Column("phone_verified", Boolean, nullable=False, default=False),
    Column("password_hash", Text, nullable=False, default=""),
    Column("password_change_required", Boolean, nullable=False, default=False),
    Column("password_changed_at", UTCDateTime, nullable=True),
    # machines
    Column("name", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("access_token_type", Text, nullable=False, default=""),
    # SHA-256 of the machine's client secret; empty when it has none.
    Column("secret_digest", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)
Index("users_username_lower", users_table.c.instance_id, func.lower(users_table.c.username))
Index("users_owner", users_table.c.instance_id, users_table.c.resource_owner)

personal_access_tokens_table = Table(
    "user_personal_access_tokens",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False, index=True),
    Column("digest", Text, nullable=False, unique=True),
    Column("expiration", UTCDateTime, nullable=True),
    Column("scopes", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)


def _parse_expiration(value: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class UsersProjection(Projection):
    """`users` and `user_personal_access_tokens`, written in the push transaction."""

    name = "users"
    version = 1
    inline = True
    tables = (users_table, personal_access_tokens_table)

    @staticmethod
    def key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    @staticmethod
    def touch(e: StoredEvent, **values: object) -> Patch:
        """Set `values` on the user row and advance its change date and sequence."""
        return Patch(
            users_table,
            UsersProjection.key(e),
            {**values, "changed_at": e.created_at, "sequence": e.sequence},
        )

    @staticmethod
    def _base(e: StoredEvent) -> dict[str, object]:
        return {
            **UsersProjection.key(e),
            "resource_owner": e.owner,
            "username": e.payload["username"],
            "created_at": e.created_at,
            "changed_at": e.created_at,
            "sequence": e.sequence,
            **{c: "" for c in _TEXT_COLUMNS},
            "email_verified": False,
            "phone_verified": False,
            "password_change_required": False,
            "password_changed_at": None,
        }

    @handles(HumanAdded.TYPE)
    def human_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        row = self._base(e)
        row.update(
            type=HUMAN,
            state=ACTIVE if p.get("password_hash") or p.get("email_verified") else INITIAL,
            first_name=p["first_name"],
            last_name=p["last_name"],
            nick_name=p.get("nick_name", ""),
            display_name=p.get("display_name", "") or f"{p['first_name']} {p['last_name']}".strip(),
            preferred_language=p.get("preferred_language", ""),
            gender=p.get("gender", ""),
            email=p.get("email", ""),
            email_verified=p.get("email_verified", False),
            phone=p.get("phone", ""),
            phone_verified=p.get("phone_verified", False),
            password_hash=p.get("password_hash", ""),
            password_change_required=p.get("password_change_required", False),
            password_changed_at=e.created_at if p.get("password_hash") else None,
        )
        return [Put(users_table, row)]

    @handles(MachineAdded.TYPE)
    def machine_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        row = self._base(e)
        row.update(
            type=MACHINE,
            state=ACTIVE,
            name=p["name"],
            description=p.get("description", ""),
            access_token_type=p.get("access_token_type", "bearer"),
        )
        return [Put(users_table, row)]

    @handles(PersonalAccessTokenAdded.TYPE)
    def pat_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                personal_access_tokens_table,
                {
                    "instance_id": e.instance_id,
                    "id": p["token_id"],
                    "user_id": e.aggregate_id,
                    "digest": p["digest"],
                    "expiration": _parse_expiration(p.get("expiration", "")),
                    "scopes": " ".join(p.get("scopes", [])),
                    "created_at": e.created_at,
                },
            ),
            self.touch(e),
        ]

    @handles(PersonalAccessTokenRemoved.TYPE)
    def pat_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(
                personal_access_tokens_table,
                {"instance_id": e.instance_id, "id": e.payload["token_id"]},
            ),
            self.touch(e),
        ]

    @handles(UserRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(users_table, self.key(e)),
            RemoveWhere(
                personal_access_tokens_table,
                {"instance_id": e.instance_id, "user_id": e.aggregate_id},
            ),
        ]


_TEXT_COLUMNS = (
    "first_name", "last_name", "nick_name", "display_name", "preferred_language", "gender",
    "email", "phone", "password_hash", "name", "description", "access_token_type",
    "secret_digest",
)


class UserState(WriteModel):
    """A user as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.type = ""
        self.state = ""
        self.username = ""
        self.pats: dict[str, str] = {}  # token id -> digest

    @property
    def exists(self) -> bool:
        return self.state not in ("", "removed")

    @applies(HumanAdded.TYPE)
    def on_human_added(self, e: StoredEvent) -> None:
        self.type = HUMAN
        self.username = e.payload["username"]
        p = e.payload
        self.state = ACTIVE if p.get("password_hash") or p.get("email_verified") else INITIAL

    @applies(MachineAdded.TYPE)
    def on_machine_added(self, e: StoredEvent) -> None:
        self.type = MACHINE
        self.username = e.payload["username"]
        self.state = ACTIVE

    @applies(PersonalAccessTokenAdded.TYPE)
    def on_pat_added(self, e: StoredEvent) -> None:
        self.pats[e.payload["token_id"]] = e.payload["digest"]

    @applies(PersonalAccessTokenRemoved.TYPE)
    def on_pat_removed(self, e: StoredEvent) -> None:
        self.pats.pop(e.payload["token_id"], None)

    @applies(UserRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.state = "removed"


def claim_username(username: str) -> AddUnique:
    return AddUnique(USERNAME_UNIQUE, username, USERNAME_TAKEN)


def new_user(instance_id: str, user_id: str, org_id: str, events: list[Event],
             username: str) -> AggregateChanges:
    """The first events of a user, claiming its user name in the instance."""
    return AggregateChanges(
        Aggregate(AGGREGATE, user_id, instance_id, org_id),
        events,
        expected_sequence=0,
        unique=[claim_username(username)],
    )


async def get_user(conn: AsyncConnection, instance_id: str, user_id: str) -> dict[str, object] | None:
    row = (
        await conn.execute(
            select(users_table).where(
                users_table.c.instance_id == instance_id, users_table.c.id == user_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None
