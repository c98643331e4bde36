"""Sessions: a person's login in progress or done, the `session` aggregate of ZITADEL.

A session is instance-scoped (its resource owner is the instance). It starts
with `session.added` (the user agent it was made from) and collects
*factors*: `session.user.checked` names the user, `session.password.checked`,
`session.totp.checked`, ... record verified proofs. Each create or update sets
a new session token (`session.token.set`, the SHA-256 digest of 256 random
bits): the previous token stops working. `session.metadata.set` carries the
whole metadata map after the change, `session.lifetime.set` the lifetime
counted from that event (the expiration), `session.terminated` ends it.

The inline read model `sessions` (one row per live session; a terminated
session's row is dropped) also follows the user: a removed user takes its
sessions along, and a changed password clears the password factor of the
user's sessions, as ZITADEL's projection does. A user who is locked or
deactivated keeps its sessions and their factors, but they no longer
authenticate (see `authenticating_session`).

The checks that produce factor events are in `session_checks`, the commands
in `session_commands`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import orgs, secrets
from donjon.core.identity import user_events as uev
from donjon.core.identity.users import ACTIVE as USER_ACTIVE
from donjon.core.identity.users import INITIAL as USER_INITIAL
from donjon.core.identity.users import UserRemoved, users_table
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, PatchWhere, Put, Remove, RemoveWhere

AGGREGATE = "session"
ACTIVE, TERMINATED = "active", "terminated"


def format_time(value: datetime) -> str:
    """A time as event payloads keep it: RFC 3339 in UTC with `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class SessionAdded(Event):
    TYPE = "session.added"
    AGGREGATE_TYPE = AGGREGATE
    # fingerprint_id, ip, description, header ({name: [values]}); all optional.
    user_agent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionUserChecked(Event):
    TYPE = "session.user.checked"
    AGGREGATE_TYPE = AGGREGATE
    user_id: str
    user_resource_owner: str
    checked_at: str  # RFC 3339
    preferred_language: str = ""


@dataclass(frozen=True)
class FactorChecked(Event):
    """Base of the events of a verified factor: when it was verified."""

    checked_at: str  # RFC 3339


@dataclass(frozen=True)
class SessionPasswordChecked(FactorChecked):
    TYPE = "session.password.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionIntentChecked(FactorChecked):
    TYPE = "session.intent.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionWebAuthNChecked(FactorChecked):
    TYPE = "session.webAuthN.checked"
    AGGREGATE_TYPE = AGGREGATE
    user_verified: bool = False


@dataclass(frozen=True)
class SessionTOTPChecked(FactorChecked):
    TYPE = "session.totp.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionOTPSMSChecked(FactorChecked):
    TYPE = "session.otp.sms.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionOTPEmailChecked(FactorChecked):
    TYPE = "session.otp.email.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionRecoveryCodeChecked(FactorChecked):
    TYPE = "session.recoverycode.checked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class SessionTokenSet(Event):
    TYPE = "session.token.set"
    AGGREGATE_TYPE = AGGREGATE
    token_id: str
    digest: str  # SHA-256 of the token (see donjon.core.identity.secrets)


@dataclass(frozen=True)
class SessionMetadataSet(Event):
    TYPE = "session.metadata.set"
    AGGREGATE_TYPE = AGGREGATE
    # The whole map after the change: key -> base64 of the value.
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionLifetimeSet(Event):
    TYPE = "session.lifetime.set"
    AGGREGATE_TYPE = AGGREGATE
    # The session expires this long after the event.
    lifetime_seconds: float


@dataclass(frozen=True)
class SessionTerminated(Event):
    TYPE = "session.terminated"
    AGGREGATE_TYPE = AGGREGATE


# The factors after the user, by their name in the SessionService's `factors`:
# (event, read-model column). A session authenticates with one of them.
FACTOR_EVENTS: dict[str, tuple[type[FactorChecked], str]] = {
    "password": (SessionPasswordChecked, "password_checked_at"),
    "webAuthN": (SessionWebAuthNChecked, "webauthn_checked_at"),
    "intent": (SessionIntentChecked, "intent_checked_at"),
    "totp": (SessionTOTPChecked, "totp_checked_at"),
    "otpSms": (SessionOTPSMSChecked, "otp_sms_checked_at"),
    "otpEmail": (SessionOTPEmailChecked, "otp_email_checked_at"),
    "recoveryCode": (SessionRecoveryCodeChecked, "recovery_code_checked_at"),
}

EVENT_TYPES: list[type[Event]] = [
    SessionAdded,
    SessionUserChecked,
    *(event for event, _column in FACTOR_EVENTS.values()),
    SessionTokenSet,
    SessionMetadataSet,
    SessionLifetimeSet,
    SessionTerminated,
]

sessions_table = Table(
    "sessions",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("creator", Text, nullable=False),
    Column("token_digest", Text, nullable=False, default=""),
    Column("user_id", Text, nullable=False, default=""),
    Column("user_resource_owner", Text, nullable=False, default=""),
    Column("user_checked_at", UTCDateTime, nullable=True),
    *(Column(column, UTCDateTime, nullable=True) for _event, column in FACTOR_EVENTS.values()),
    Column("webauthn_user_verified", Boolean, nullable=False, default=False),
    Column("metadata", JSON, nullable=False),
    Column("user_agent_fingerprint_id", Text, nullable=False, default=""),
    Column("user_agent_ip", Text, nullable=False, default=""),
    Column("user_agent_description", Text, nullable=False, default=""),
    Column("user_agent_header", JSON, nullable=False),
    Column("expiration", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)
Index("sessions_token_digest", sessions_table.c.instance_id, sessions_table.c.token_digest)
Index("sessions_user", sessions_table.c.instance_id, sessions_table.c.user_id)

FACTOR_COLUMNS = tuple(column for _event, column in FACTOR_EVENTS.values())


class SessionsProjection(Projection):
    """`sessions`, written in the push transaction."""

    name = "sessions"
    version = 1
    inline = True
    tables = (sessions_table,)

    @staticmethod
    def key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    def touch(self, e: StoredEvent, **values: object) -> Patch:
        return Patch(
            sessions_table,
            self.key(e),
            {**values, "changed_at": e.created_at, "sequence": e.sequence},
        )

    @handles(SessionAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        agent = e.payload.get("user_agent") or {}
        return [
            Put(
                sessions_table,
                {
                    **self.key(e),
                    "creator": e.creator,
                    "token_digest": "",
                    "user_id": "",
                    "user_resource_owner": "",
                    "user_checked_at": None,
                    **{column: None for column in FACTOR_COLUMNS},
                    "webauthn_user_verified": False,
                    "metadata": {},
                    "user_agent_fingerprint_id": agent.get("fingerprint_id", ""),
                    "user_agent_ip": agent.get("ip", ""),
                    "user_agent_description": agent.get("description", ""),
                    "user_agent_header": agent.get("header", {}),
                    "expiration": None,
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(SessionUserChecked.TYPE)
    def user_checked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            self.touch(
                e,
                user_id=e.payload["user_id"],
                user_resource_owner=e.payload["user_resource_owner"],
                user_checked_at=parse_time(e.payload["checked_at"]),
            )
        ]

    @handles(*(event.TYPE for event, _column in FACTOR_EVENTS.values()))
    def factor_checked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        column = next(c for ev, c in FACTOR_EVENTS.values() if ev.TYPE == e.type)
        values: dict[str, object] = {column: parse_time(e.payload["checked_at"])}
        if e.type == SessionWebAuthNChecked.TYPE:
            values["webauthn_user_verified"] = bool(e.payload.get("user_verified"))
        return [self.touch(e, **values)]

    @handles(SessionTokenSet.TYPE)
    def token_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, token_digest=e.payload["digest"])]

    @handles(SessionMetadataSet.TYPE)
    def metadata_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, metadata=dict(e.payload.get("metadata") or {}))]

    @handles(SessionLifetimeSet.TYPE)
    def lifetime_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        expiration = e.created_at + timedelta(seconds=e.payload["lifetime_seconds"])
        return [self.touch(e, expiration=expiration)]

    @handles(SessionTerminated.TYPE)
    def terminated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(sessions_table, self.key(e))]

    @handles(UserRemoved.TYPE)
    def user_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(sessions_table, {"instance_id": e.instance_id, "user_id": e.aggregate_id})
        ]

    @handles(uev.HumanPasswordChanged.TYPE)
    def password_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        # A password check made before the change no longer proves anything.
        return [
            PatchWhere(
                sessions_table,
                {"instance_id": e.instance_id, "user_id": e.aggregate_id},
                {"password_checked_at": None},
            )
        ]


class SessionState(WriteModel):
    """A session as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.state = ""
        self.creator = ""
        self.user_id = ""
        self.user_org = ""
        self.token_digest = ""
        self.metadata: dict[str, str] = {}
        self.expiration: datetime | None = None
        self.factors: dict[str, datetime] = {}  # factor name -> verified at

    @property
    def exists(self) -> bool:
        return self.state == ACTIVE

    def expired(self, now: datetime | None = None) -> bool:
        return self.expiration is not None and self.expiration <= (now or datetime.now(UTC))

    def token_matches(self, token: str) -> bool:
        return bool(token) and bool(self.token_digest) and secrets.matches(token, self.token_digest)

    @applies(SessionAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.state = ACTIVE
        self.creator = e.creator

    @applies(SessionUserChecked.TYPE)
    def on_user_checked(self, e: StoredEvent) -> None:
        self.user_id = e.payload["user_id"]
        self.user_org = e.payload["user_resource_owner"]
        self.factors["user"] = parse_time(e.payload["checked_at"])

    @applies(*(event.TYPE for event, _column in FACTOR_EVENTS.values()))
    def on_factor_checked(self, e: StoredEvent) -> None:
        name = next(n for n, (ev, _c) in FACTOR_EVENTS.items() if ev.TYPE == e.type)
        self.factors[name] = parse_time(e.payload["checked_at"])

    @applies(SessionTokenSet.TYPE)
    def on_token_set(self, e: StoredEvent) -> None:
        self.token_digest = e.payload["digest"]

    @applies(SessionMetadataSet.TYPE)
    def on_metadata_set(self, e: StoredEvent) -> None:
        self.metadata = dict(e.payload.get("metadata") or {})

    @applies(SessionLifetimeSet.TYPE)
    def on_lifetime_set(self, e: StoredEvent) -> None:
        self.expiration = e.created_at + timedelta(seconds=e.payload["lifetime_seconds"])

    @applies(SessionTerminated.TYPE)
    def on_terminated(self, e: StoredEvent) -> None:
        self.state = TERMINATED


def encode_metadata(values: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in values.items()}


# -- reads ------------------------------------------------------------------------------


async def get_session(
    conn: AsyncConnection, instance_id: str, session_id: str
) -> dict[str, Any] | None:
    """The live session's read-model row (None when unknown, terminated or its user removed)."""
    row = (
        await conn.execute(
            select(sessions_table).where(
                sessions_table.c.instance_id == instance_id, sessions_table.c.id == session_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None


def authenticates(row: Any, now: datetime | None = None) -> bool:
    """Whether a session row proves who its user is: a checked user and another
    factor, and not expired. (The user's and org's states are checked apart.)"""
    if not row.user_id or row.user_checked_at is None:
        return False
    if row.expiration is not None and row.expiration <= (now or datetime.now(UTC)):
        return False
    return any(getattr(row, column) is not None for column in FACTOR_COLUMNS)


async def authenticating_session(
    conn: AsyncConnection, instance_id: str, token: str
) -> dict[str, Any] | None:
    """The session whose current token this is, when it authenticates its user.

    None unless the session is live and not expired, has a checked user and
    at least one further verified factor (password, passkey, ...), and its
    user is active (or initial) in an active org. Returns the session row.
    """
    s, u, o = sessions_table, users_table, orgs.orgs_table
    row = (
        await conn.execute(
            select(s, u.c.state.label("user_state"), o.c.state.label("org_state"))
            .join(u, (u.c.instance_id == s.c.instance_id) & (u.c.id == s.c.user_id))
            .join(o, (o.c.instance_id == u.c.instance_id) & (o.c.id == u.c.resource_owner))
            .where(s.c.instance_id == instance_id, s.c.token_digest == secrets.digest(token))
        )
    ).first()
    if row is None or not authenticates(row):
        return None
    if row.user_state not in (USER_ACTIVE, USER_INITIAL) or row.org_state != orgs.ACTIVE:
        return None
    return dict(row._mapping)
