"""Device authorizations (RFC 8628) as events (aggregate `device_auth`) and read model.

- `device_auth.added`: a device asked (client, scopes, the SHA-256 of its
  `device_code`, the `user_code` the person types, expiry, polling interval);
- `device_auth.approved`: a login approved it with a session (user,
  auth_time, amr);
- `device_auth.denied`: the person refused;
- `device_auth.done`: the device got its tokens (once).

Read model `oidc_device_auths`: found by user code (the login) and by device
code digest (the token endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.sessions import parse_time
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import RemoveWhere

AGGREGATE = "device_auth"
PENDING, APPROVED, DENIED, DONE = "pending", "approved", "denied", "done"


@dataclass(frozen=True)
class DeviceAuthAdded(Event):
    TYPE = "device_auth.added"
    AGGREGATE_TYPE = AGGREGATE
    client_id: str
    app_id: str
    device_code_digest: str
    user_code: str
    # RFC 3339
    expiration: str
    interval: int
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeviceAuthApproved(Event):
    TYPE = "device_auth.approved"
    AGGREGATE_TYPE = AGGREGATE
    session_id: str
    user_id: str
    user_org: str
    auth_time: str
    amr: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeviceAuthDenied(Event):
    TYPE = "device_auth.denied"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class DeviceAuthDone(Event):
    TYPE = "device_auth.done"
    AGGREGATE_TYPE = AGGREGATE
    oidc_session_id: str


EVENT_TYPES: list[type[Event]] = [
    DeviceAuthAdded,
    DeviceAuthApproved,
    DeviceAuthDenied,
    DeviceAuthDone,
]

device_auths_table = Table(
    "oidc_device_auths",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("app_id", Text, nullable=False),
    Column("device_code_digest", Text, nullable=False),
    Column("user_code", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("interval", Integer, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("auth_time", UTCDateTime, nullable=True),
    Column("amr", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)
Index(
    "oidc_device_auths_user_code",
    device_auths_table.c.instance_id,
    device_auths_table.c.user_code,
)
Index(
    "oidc_device_auths_device_code",
    device_auths_table.c.device_code_digest,
    device_auths_table.c.instance_id,
    unique=True,
)


class DeviceAuthsProjection(AggregateRows):
    """`oidc_device_auths`, written in the push transaction."""

    name = "oidc_device_auths"
    version = 1
    inline = True
    tables = (device_auths_table,)
    row_table = device_auths_table

    @handles(DeviceAuthAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._new_row(
                e,
                {
                    "state": PENDING,
                    "client_id": p["client_id"],
                    "app_id": p["app_id"],
                    "device_code_digest": p["device_code_digest"],
                    "user_code": p["user_code"],
                    "scopes": p.get("scopes", []),
                    "interval": p["interval"],
                    "expires_at": parse_time(p["expiration"]),
                    "session_id": "",
                    "user_id": "",
                    "auth_time": None,
                    "amr": [],
                },
            )
        ]

    @handles(DeviceAuthApproved.TYPE)
    def approved(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._touch(
                e,
                state=APPROVED,
                session_id=p["session_id"],
                user_id=p["user_id"],
                auth_time=parse_time(p["auth_time"]),
                amr=p.get("amr", []),
            )
        ]

    @handles(DeviceAuthDenied.TYPE)
    def denied(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=DENIED)]

    @handles(DeviceAuthDone.TYPE)
    def done(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=DONE)]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(device_auths_table, {"instance_id": e.aggregate_id})]


class DeviceAuthState(WriteModel):
    """A device authorization as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.state = ""
        self.request: dict[str, Any] = {}
        self.expiration: datetime | None = None

    @applies(DeviceAuthAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.state = PENDING
        self.request = dict(e.payload)
        self.expiration = parse_time(e.payload["expiration"])

    @applies(DeviceAuthApproved.TYPE)
    def on_approved(self, e: StoredEvent) -> None:
        self.state = APPROVED

    @applies(DeviceAuthDenied.TYPE)
    def on_denied(self, e: StoredEvent) -> None:
        self.state = DENIED

    @applies(DeviceAuthDone.TYPE)
    def on_done(self, e: StoredEvent) -> None:
        self.state = DONE
