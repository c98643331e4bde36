"""Users: humans (people who log in) and machines (service accounts), one `user` aggregate.

User names are unique per instance (case-insensitive); a user's login name
is `username@<primary domain of its org>`. Events follow ZITADEL's names
(`user.human.added`, `user.machine.added`, `user.locked`, ...).

This module holds the events that add and remove a user and its personal
access tokens, the tables of the `users` read model (its projection, which
follows every user event in `user_events` too, is in `user_projection`) and
the write model `UserState`; reads beyond `get_user`
(login names, lookup by login name) are in `user_reads`. The commands that validate
input live in `user_commands`, passwords in `user_password`, machine keys in
`user_keys`, metadata in `user_metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Boolean, Column, Index, Integer, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import AddUnique, Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import user_events as ev
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import projection_metadata

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
    *ev.EVENT_TYPES,
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
    # Failed password checks since the last successful one or unlock (the lockout's count).
    Column("password_check_failed_count", Integer, nullable=False, default=0),
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
# ListUsers' common searches and its default order. The lower() indexes use
# text_pattern_ops on PostgreSQL so that `LIKE 'prefix%'` can use them under any
# collation (SQLite gets a range condition instead, see api.queries).
Index(
    "users_username_lower",
    users_table.c.instance_id,
    func.lower(users_table.c.username).label("username_lower"),
    postgresql_ops={"username_lower": "text_pattern_ops"},
)
Index(
    "users_email_lower",
    users_table.c.instance_id,
    func.lower(users_table.c.email).label("email_lower"),
    postgresql_ops={"email_lower": "text_pattern_ops"},
)
Index("users_username", users_table.c.instance_id, users_table.c.username)
Index("users_created", users_table.c.instance_id, users_table.c.created_at, users_table.c.id)
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


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time of an event payload; None for empty (never)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True, slots=True)
class PendingCode:
    """A verification code waiting to be used: its digest and when it expires."""

    digest: str
    expires_at: datetime | None


class UserState(WriteModel):
    """A user as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.type = ""
        self.state = ""
        self.username = ""
        self.pats: dict[str, str] = {}  # token id -> digest
        # humans
        self.first_name = self.last_name = self.nick_name = self.display_name = ""
        self.preferred_language = self.gender = ""
        self.email = self.phone = ""
        self.email_verified = self.phone_verified = False
        self.password_hash = ""
        self.password_change_required = False
        self.failed_password_attempts = 0
        self.email_code: PendingCode | None = None
        self.phone_code: PendingCode | None = None
        self.password_code: PendingCode | None = None
        # machines
        self.name = self.description = ""
        self.access_token_type = ""
        self.has_secret = False
        self.keys: set[str] = set()
        self.metadata: set[str] = set()

    @property
    def exists(self) -> bool:
        return self.state not in ("", "removed")

    @applies(HumanAdded.TYPE)
    def on_human_added(self, e: StoredEvent) -> None:
        p = e.payload
        self.type = HUMAN
        self.username = p["username"]
        self.state = ACTIVE if p.get("password_hash") or p.get("email_verified") else INITIAL
        self.first_name, self.last_name = p["first_name"], p["last_name"]
        self.nick_name = p.get("nick_name", "")
        self.display_name = p.get("display_name", "")
        self.preferred_language = p.get("preferred_language", "")
        self.gender = p.get("gender", "")
        self.email, self.email_verified = p.get("email", ""), p.get("email_verified", False)
        self.phone, self.phone_verified = p.get("phone", ""), p.get("phone_verified", False)
        self.password_hash = p.get("password_hash", "")
        self.password_change_required = p.get("password_change_required", False)

    @applies(MachineAdded.TYPE)
    def on_machine_added(self, e: StoredEvent) -> None:
        self.type = MACHINE
        self.username = e.payload["username"]
        self.state = ACTIVE
        self.name = e.payload["name"]
        self.description = e.payload.get("description", "")
        self.access_token_type = e.payload.get("access_token_type", "bearer")

    @applies(ev.HumanProfileChanged.TYPE, ev.MachineChanged.TYPE)
    def on_fields_changed(self, e: StoredEvent) -> None:
        for name, value in e.payload.items():
            if value is not None:
                setattr(self, name, value)

    @applies(ev.UsernameChanged.TYPE)
    def on_username_changed(self, e: StoredEvent) -> None:
        self.username = e.payload["username"]

    @applies(ev.HumanEmailChanged.TYPE)
    def on_email_changed(self, e: StoredEvent) -> None:
        self.email, self.email_verified, self.email_code = e.payload["email"], False, None

    @applies(ev.HumanEmailCodeAdded.TYPE)
    def on_email_code(self, e: StoredEvent) -> None:
        self.email_code = PendingCode(e.payload["code_digest"], parse_time(e.payload["expires_at"]))

    @applies(ev.HumanEmailVerified.TYPE)
    def on_email_verified(self, e: StoredEvent) -> None:
        self.email_verified, self.email_code = True, None
        if self.state == INITIAL:
            self.state = ACTIVE

    @applies(ev.HumanPhoneChanged.TYPE)
    def on_phone_changed(self, e: StoredEvent) -> None:
        self.phone, self.phone_verified, self.phone_code = e.payload["phone"], False, None

    @applies(ev.HumanPhoneCodeAdded.TYPE)
    def on_phone_code(self, e: StoredEvent) -> None:
        self.phone_code = PendingCode(e.payload["code_digest"], parse_time(e.payload["expires_at"]))

    @applies(ev.HumanPhoneVerified.TYPE)
    def on_phone_verified(self, e: StoredEvent) -> None:
        self.phone_verified, self.phone_code = True, None

    @applies(ev.HumanPhoneRemoved.TYPE)
    def on_phone_removed(self, e: StoredEvent) -> None:
        self.phone, self.phone_verified, self.phone_code = "", False, None

    @applies(ev.HumanPasswordChanged.TYPE)
    def on_password_changed(self, e: StoredEvent) -> None:
        self.password_hash = e.payload["password_hash"]
        self.password_change_required = e.payload.get("change_required", False)
        self.password_code = None
        if self.state == INITIAL:
            self.state = ACTIVE

    @applies(ev.HumanPasswordCodeAdded.TYPE)
    def on_password_code(self, e: StoredEvent) -> None:
        self.password_code = PendingCode(
            e.payload["code_digest"], parse_time(e.payload["expires_at"])
        )

    @applies(ev.HumanPasswordHashUpdated.TYPE)
    def on_password_rehashed(self, e: StoredEvent) -> None:
        self.password_hash = e.payload["password_hash"]

    @applies(ev.HumanPasswordCheckSucceeded.TYPE)
    def on_password_check_succeeded(self, e: StoredEvent) -> None:
        self.failed_password_attempts = 0

    @applies(ev.HumanPasswordCheckFailed.TYPE)
    def on_password_check_failed(self, e: StoredEvent) -> None:
        self.failed_password_attempts += 1

    @applies(ev.UserLocked.TYPE)
    def on_locked(self, e: StoredEvent) -> None:
        self.state = LOCKED

    @applies(ev.UserUnlocked.TYPE)
    def on_unlocked(self, e: StoredEvent) -> None:
        self.state, self.failed_password_attempts = ACTIVE, 0

    @applies(ev.UserDeactivated.TYPE)
    def on_deactivated(self, e: StoredEvent) -> None:
        self.state = INACTIVE

    @applies(ev.UserReactivated.TYPE)
    def on_reactivated(self, e: StoredEvent) -> None:
        self.state = ACTIVE

    @applies(ev.MachineSecretSet.TYPE)
    def on_secret_set(self, e: StoredEvent) -> None:
        self.has_secret = True

    @applies(ev.MachineSecretRemoved.TYPE)
    def on_secret_removed(self, e: StoredEvent) -> None:
        self.has_secret = False

    @applies("user.machine.key.added")
    def on_key_added(self, e: StoredEvent) -> None:
        self.keys.add(e.payload["key_id"])

    @applies("user.machine.key.removed")
    def on_key_removed(self, e: StoredEvent) -> None:
        self.keys.discard(e.payload["key_id"])

    @applies("user.metadata.set")
    def on_metadata_set(self, e: StoredEvent) -> None:
        self.metadata.add(e.payload["key"])

    @applies("user.metadata.removed")
    def on_metadata_removed(self, e: StoredEvent) -> None:
        self.metadata.discard(e.payload["key"])

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


def new_user(
    instance_id: str, user_id: str, org_id: str, events: list[Event], username: str
) -> AggregateChanges:
    """The first events of a user, claiming its user name in the instance."""
    return AggregateChanges(
        Aggregate(AGGREGATE, user_id, instance_id, org_id),
        events,
        expected_sequence=0,
        unique=[claim_username(username)],
    )


async def get_user(
    conn: AsyncConnection, instance_id: str, user_id: str
) -> dict[str, object] | None:
    row = (
        await conn.execute(
            select(users_table).where(
                users_table.c.instance_id == instance_id, users_table.c.id == user_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None
