"""The core's tables: the event store and the bookkeeping of projections and setup.

Projection read models live in their own MetaData (`donjon.core.projections`),
so a rebuild can drop and recreate them without touching these.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Payload = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("instance_id", Text, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    # The global order: assigned under the push lock, so a position becomes
    # visible only after every smaller one (see EventStore.push).
    Column("position", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("revision", SmallInteger, nullable=False),
    Column("payload", Payload, nullable=False),
    Column("creator", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("instance_id", "aggregate_type", "aggregate_id", "sequence"),
    Index("events_position", "position", unique=True),
    Index("events_type_position", "event_type", "position"),
    Index("events_instance_created", "instance_id", "created_at"),
)

unique_constraints = Table(
    "unique_constraints",
    metadata,
    # '' for values unique across instances.
    Column("instance_id", Text, nullable=False),
    Column("unique_type", Text, nullable=False),
    Column("unique_field", Text, nullable=False),
    PrimaryKeyConstraint("instance_id", "unique_type", "unique_field"),
)

projection_states = Table(
    "projection_states",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    # 'active' (following new events) or 'rebuilding' (replaying the store).
    Column("status", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # A failed event stops an async projection until this time.
    Column("retry_at", UTCDateTime, nullable=True),
)

projection_failures = Table(
    "projection_failures",
    metadata,
    Column("projection", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("failure_count", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("last_failed", UTCDateTime, nullable=False),
    Column("parked", Boolean, nullable=False),
    PrimaryKeyConstraint("projection", "position"),
)

setup_leases = Table(
    "setup_leases",
    metadata,
    Column("step", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

encryption_keys = Table(
    "encryption_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
