"""The instance aggregate (a virtual tenant) and its domains.

The identity model (orgs, users, projects) builds on this; here is what setup
needs to create the first instance and what the server needs to map a request's
host to an instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import (
    AddUnique,
    Aggregate,
    AggregateChanges,
    Event,
    RemoveUnique,
    StoredEvent,
)
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

AGGREGATE = "instance"


@dataclass(frozen=True)
class InstanceAdded(Event):
    TYPE = "instance.added"
    AGGREGATE_TYPE = AGGREGATE
    name: str
    default_language: str = "en"


@dataclass(frozen=True)
class InstanceChanged(Event):
    TYPE = "instance.changed"
    AGGREGATE_TYPE = AGGREGATE
    name: str


@dataclass(frozen=True)
class InstanceRemoved(Event):
    TYPE = "instance.removed"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class InstanceDomainAdded(Event):
    TYPE = "instance.domain.added"
    AGGREGATE_TYPE = AGGREGATE
    domain: str
    generated: bool = False


@dataclass(frozen=True)
class InstanceDomainPrimarySet(Event):
    TYPE = "instance.domain.primary.set"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


@dataclass(frozen=True)
class InstanceDomainRemoved(Event):
    TYPE = "instance.domain.removed"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


EVENT_TYPES: list[type[Event]] = [
    InstanceAdded,
    InstanceChanged,
    InstanceRemoved,
    InstanceDomainAdded,
    InstanceDomainPrimarySet,
    InstanceDomainRemoved,
]

DOMAIN_TAKEN = "Errors.Instance.Domain.AlreadyExists"

instances_table = Table(
    "instances",
    projection_metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("default_language", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

instance_domains_table = Table(
    "instance_domains",
    projection_metadata,
    Column("domain", Text, primary_key=True),
    Column("instance_id", Text, nullable=False, index=True),
    Column("generated", Boolean, nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


class InstancesProjection(Projection):
    name = "instances"
    version = 1
    inline = True
    tables = (instances_table, instance_domains_table)

    @handles(InstanceAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                instances_table,
                {
                    "id": e.aggregate_id,
                    "name": e.payload["name"],
                    "default_language": e.payload.get("default_language", "en"),
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles(InstanceChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                instances_table,
                {"id": e.aggregate_id},
                {"name": e.payload["name"], "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(InstanceRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(instances_table, {"id": e.aggregate_id}),
            RemoveWhere(instance_domains_table, {"instance_id": e.aggregate_id}),
        ]

    @handles(InstanceDomainAdded.TYPE)
    def domain_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                instance_domains_table,
                {
                    "domain": e.payload["domain"],
                    "instance_id": e.aggregate_id,
                    "generated": e.payload.get("generated", False),
                    "is_primary": False,
                    "created_at": e.created_at,
                },
            )
        ]

    @handles(InstanceDomainPrimarySet.TYPE)
    def primary_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        from donjon.core.projections.statements import PatchWhere

        return [
            PatchWhere(
                instance_domains_table, {"instance_id": e.aggregate_id}, {"is_primary": False}
            ),
            Patch(instance_domains_table, {"domain": e.payload["domain"]}, {"is_primary": True}),
        ]

    @handles(InstanceDomainRemoved.TYPE)
    def domain_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(instance_domains_table, {"domain": e.payload["domain"]})]


def add_instance(
    instance_id: str, name: str, domains: list[str], default_language: str = "en"
) -> AggregateChanges:
    """The events of a new instance whose first domain is primary."""
    domains = [d.lower() for d in domains]
    events: list[Event] = [InstanceAdded(name=name, default_language=default_language)]
    events += [InstanceDomainAdded(domain=d) for d in domains]
    if domains:
        events.append(InstanceDomainPrimarySet(domain=domains[0]))
    return AggregateChanges(
        Aggregate(AGGREGATE, instance_id, instance_id, instance_id),
        events,
        expected_sequence=0,
        unique=[AddUnique("instance_domain", d, DOMAIN_TAKEN, is_global=True) for d in domains],
    )


def add_domain(
    instance_id: str, domain: str, expected_sequence: int | None = None
) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(AGGREGATE, instance_id, instance_id, instance_id),
        [InstanceDomainAdded(domain=domain.lower())],
        expected_sequence=expected_sequence,
        unique=[AddUnique("instance_domain", domain, DOMAIN_TAKEN, is_global=True)],
    )


def remove_domain(instance_id: str, domain: str) -> AggregateChanges:
    return AggregateChanges(
        Aggregate(AGGREGATE, instance_id, instance_id, instance_id),
        [InstanceDomainRemoved(domain=domain.lower())],
        unique=[RemoveUnique("instance_domain", domain, is_global=True)],
    )


async def instance_by_domain(conn: AsyncConnection, domain: str) -> str | None:
    row = (
        await conn.execute(
            select(instance_domains_table.c.instance_id).where(
                instance_domains_table.c.domain == domain.lower()
            )
        )
    ).first()
    return row[0] if row else None


async def list_instances(conn: AsyncConnection) -> list[dict[str, object]]:
    rows = await conn.execute(select(instances_table).order_by(instances_table.c.created_at))
    return [dict(r._mapping) for r in rows]
