"""Targets: the endpoints actions call, event-sourced per instance.

A target has a name (unique in its instance), an endpoint URL, a timeout,
a type and a signing key:

- `webhook` (ZITADEL's `restWebhook`): POST; only the status matters, and
  with `interrupt_on_error` a failure stops what called it;
- `call` (`restCall`): POST; the 2xx JSON body may replace the request, the
  response or add token claims; `interrupt_on_error` as above;
- `async` (`restAsync`): POST, fire and forget (nothing waits on it).

The signing key (32 random bytes, URL-safe base64) is generated when the
target is created and sealed with the `targetKey` purpose key (see
`donjon.core.keys`) before it enters an event. Rotating it (UpdateTarget's
`expirationSigningKey`) keeps the previous key signing beside the new one
until it expires, so receivers can switch without dropping requests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Float, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import AddUnique, Aggregate, AggregateChanges, Event, RemoveUnique
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.keys import KeyStore
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

AGGREGATE = "target"
KEY_PURPOSE = "targetKey"
NAME_TAKEN = "Errors.Target.AlreadyExists"
UNIQUE_NAME = "target_name"

WEBHOOK, CALL, ASYNC = "webhook", "call", "async"
TARGET_TYPES = (WEBHOOK, CALL, ASYNC)
PAYLOAD_JSON = "PAYLOAD_TYPE_JSON"

MAX_NAME = 200
MAX_ENDPOINT = 2000
MAX_TIMEOUT = 300.0  # seconds; ZITADEL's Executions.MaxTtl is 5m


class _PartialEvent(Event):
    """An event whose None fields mean "unchanged": they are left out of the payload."""

    def payload(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class TargetAdded(Event):
    TYPE = "target.added"
    AGGREGATE_TYPE = AGGREGATE
    name: str
    endpoint: str
    target_type: str
    timeout: float
    interrupt_on_error: bool
    # The signing key sealed with the `targetKey` purpose key, base64.
    signing_key: str
    payload_type: str = PAYLOAD_JSON


@dataclass(frozen=True)
class TargetChanged(_PartialEvent):
    TYPE = "target.changed"
    AGGREGATE_TYPE = AGGREGATE
    name: str | None = None
    # The name before a rename, so the old unique value is freed by replays too.
    old_name: str | None = None
    endpoint: str | None = None
    target_type: str | None = None
    timeout: float | None = None
    interrupt_on_error: bool | None = None
    payload_type: str | None = None
    # A rotated key: the new sealed key, and until when the old one still signs.
    signing_key: str | None = None
    previous_signing_key: str | None = None
    previous_key_expires_at: str | None = None


@dataclass(frozen=True)
class TargetRemoved(Event):
    TYPE = "target.removed"
    AGGREGATE_TYPE = AGGREGATE
    name: str = ""


EVENT_TYPES: list[type[Event]] = [TargetAdded, TargetChanged, TargetRemoved]

targets_table = Table(
    "actions_targets",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("target_type", Text, nullable=False),
    Column("timeout", Float, nullable=False),
    Column("interrupt_on_error", Boolean, nullable=False),
    Column("payload_type", Text, nullable=False),
    Column("signing_key", Text, nullable=False),
    Column("previous_signing_key", Text, nullable=True),
    Column("previous_key_expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

_CHANGED_COLUMNS = (
    "name",
    "endpoint",
    "target_type",
    "timeout",
    "interrupt_on_error",
    "payload_type",
    "signing_key",
    "previous_signing_key",
)


class TargetsProjection(Projection):
    """The `actions_targets` read model (inline: executions check targets at once)."""

    name = "actions_targets"
    version = 1
    inline = True
    tables = (targets_table,)

    @staticmethod
    def _key(e: Any) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    @handles(TargetAdded.TYPE)
    def added(self, e):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                targets_table,
                {
                    **self._key(e),
                    "name": p["name"],
                    "endpoint": p["endpoint"],
                    "target_type": p["target_type"],
                    "timeout": float(p["timeout"]),
                    "interrupt_on_error": bool(p.get("interrupt_on_error")),
                    "payload_type": p.get("payload_type") or PAYLOAD_JSON,
                    "signing_key": p["signing_key"],
                    "previous_signing_key": None,
                    "previous_key_expires_at": None,
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(TargetChanged.TYPE)
    def changed(self, e):  # type: ignore[no-untyped-def]
        values: dict[str, Any] = {
            c: e.payload[c] for c in _CHANGED_COLUMNS if e.payload.get(c) is not None
        }
        if e.payload.get("previous_key_expires_at"):
            values["previous_key_expires_at"] = datetime.fromisoformat(
                e.payload["previous_key_expires_at"]
            )
        return [
            Patch(
                targets_table,
                self._key(e),
                {**values, "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(TargetRemoved.TYPE)
    def removed(self, e):  # type: ignore[no-untyped-def]
        return [Remove(targets_table, self._key(e))]

    @handles("instance.removed")
    def instance_removed(self, e):  # type: ignore[no-untyped-def]
        return [RemoveWhere(targets_table, {"instance_id": e.instance_id})]


class TargetState(WriteModel):
    """A target as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.name = ""
        self.endpoint = ""
        self.target_type = ""
        self.timeout = 0.0
        self.interrupt_on_error = False
        self.payload_type = PAYLOAD_JSON
        self.signing_key = ""
        self.removed = False

    @property
    def exists(self) -> bool:
        return self.sequence > 0 and not self.removed

    @applies(TargetAdded.TYPE, TargetChanged.TYPE)
    def set_fields(self, e: Any) -> None:
        for name in (
            "name",
            "endpoint",
            "target_type",
            "timeout",
            "interrupt_on_error",
            "payload_type",
            "signing_key",
        ):
            if e.payload.get(name) is not None:
                setattr(self, name, e.payload[name])

    @applies(TargetRemoved.TYPE)
    def remove(self, e: Any) -> None:
        self.removed = True


# -- commands -----------------------------------------------------------------------------


def check_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return name


def check_timeout(seconds: float) -> float:
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"must be above 0s and at most {MAX_TIMEOUT:g}s")
    return seconds


async def seal_key(keys: KeyStore, plain: str) -> str:
    return base64.b64encode(await keys.encrypt(KEY_PURPOSE, plain.encode())).decode()


async def open_key(keys: KeyStore, sealed: str) -> str:
    return (await keys.decrypt(KEY_PURPOSE, base64.b64decode(sealed))).decode()


def add_target(instance_id: str, target_id: str, event: TargetAdded) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(AGGREGATE, target_id, instance_id, instance_id),
        [event],
        expected_sequence=0,
        unique=[AddUnique(UNIQUE_NAME, event.name, NAME_TAKEN)],
    )


def change_target(state: TargetState, event: TargetChanged) -> AggregateChanges:
    unique: list[AddUnique | RemoveUnique] = []
    if event.name is not None and event.old_name is not None:
        unique = [
            RemoveUnique(UNIQUE_NAME, event.old_name),
            AddUnique(UNIQUE_NAME, event.name, NAME_TAKEN),
        ]
    return AggregateChanges(
        state.aggregate(), [event], expected_sequence=state.sequence, unique=unique
    )


def remove_target(state: TargetState) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(),
        [TargetRemoved(name=state.name)],
        expected_sequence=state.sequence,
        unique=[RemoveUnique(UNIQUE_NAME, state.name)],
    )


# -- reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A target as deliveries use it (keys still sealed)."""

    id: str
    name: str
    endpoint: str
    target_type: str
    timeout: float
    interrupt_on_error: bool
    signing_key: str
    previous_signing_key: str | None
    previous_key_expires_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Target:
        return cls(
            id=row.id,
            name=row.name,
            endpoint=row.endpoint,
            target_type=row.target_type,
            timeout=float(row.timeout),
            interrupt_on_error=bool(row.interrupt_on_error),
            signing_key=row.signing_key,
            previous_signing_key=row.previous_signing_key,
            previous_key_expires_at=row.previous_key_expires_at,
        )


async def targets_by_id(
    conn: AsyncConnection, instance_id: str, target_ids: list[str]
) -> dict[str, Target]:
    if not target_ids:
        return {}
    rows = await conn.execute(
        select(targets_table).where(
            targets_table.c.instance_id == instance_id, targets_table.c.id.in_(target_ids)
        )
    )
    return {r.id: Target.from_row(r) for r in rows}
