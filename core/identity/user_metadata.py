"""Users' metadata: key/value pairs set through the API (values are bytes).

Values travel base64-encoded in protobuf JSON and are kept that way in the
event payload and in `user_metadata`, so both stores hold them as text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sqlalchemy import Column, Integer, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.users import AGGREGATE
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Put, Remove, RemoveWhere

MAX_KEY = 200
MAX_VALUE = 500_000  # bytes, as ZITADEL allows


@dataclass(frozen=True)
class MetadataSet(Event):
    TYPE = "user.metadata.set"
    AGGREGATE_TYPE = AGGREGATE
    key: str
    # base64 (standard alphabet, padded)
    value: str


@dataclass(frozen=True)
class MetadataRemoved(Event):
    TYPE = "user.metadata.removed"
    AGGREGATE_TYPE = AGGREGATE
    key: str


EVENT_TYPES: list[type[Event]] = [MetadataSet, MetadataRemoved]

metadata_table = Table(
    "user_metadata",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("resource_owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)


class UserMetadataProjection(Projection):
    """`user_metadata`, written in the push transaction."""

    name = "user_metadata"
    version = 1
    inline = True
    tables = (metadata_table,)

    @staticmethod
    def _key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "user_id": e.aggregate_id, "key": e.payload["key"]}

    @handles(MetadataSet.TYPE)
    def set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                metadata_table,
                {
                    **self._key(e),
                    "value": e.payload["value"],
                    "resource_owner": e.owner,
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(MetadataRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(metadata_table, self._key(e))]

    @handles("user.removed")
    def user_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(metadata_table, {"instance_id": e.instance_id, "user_id": e.aggregate_id})
        ]


def check_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise ValueError("must not be empty")
    if len(key) > MAX_KEY:
        raise ValueError(f"must be at most {MAX_KEY} characters")
    return key


def check_value(value: bytes) -> str:
    """The value as stored (base64); ValueError when empty or too large."""
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_VALUE:
        raise ValueError(f"must be at most {MAX_VALUE} bytes")
    return base64.b64encode(value).decode()
