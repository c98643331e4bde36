"""The instance aggregate (a virtual tenant) and its domains.

The identity model (orgs, users, projects) builds on this; here is what setup
needs to create the first instance and what the server needs to map a request's
host to an instance.
"""

from __future__ import annotations

import re
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
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere, Statement

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


@dataclass(frozen=True)
class InstanceTrustedDomainAdded(Event):
    TYPE = "instance.trusted_domain.added"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


@dataclass(frozen=True)
class InstanceTrustedDomainRemoved(Event):
    TYPE = "instance.trusted_domain.removed"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


EVENT_TYPES: list[type[Event]] = [
    InstanceAdded,
    InstanceChanged,
    InstanceRemoved,
    InstanceDomainAdded,
    InstanceDomainPrimarySet,
    InstanceDomainRemoved,
    InstanceTrustedDomainAdded,
    InstanceTrustedDomainRemoved,
]

DOMAIN_TAKEN = "Errors.Instance.Domain.AlreadyExists"
MAX_NAME = 200
MAX_DOMAIN = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check_domain(domain: str) -> str:
    """The domain lower-cased and trimmed; ValueError saying what is wrong with it.

    A host name: dot-separated labels of letters, digits and inner dashes,
    63 characters at most each, 253 in all (no port, no scheme, no path).
    """
    value = domain.strip().lower().rstrip(".")
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_DOMAIN:
        raise ValueError(f"must be at most {MAX_DOMAIN} characters")
    if not all(_LABEL.fullmatch(label) for label in value.split(".")):
        raise ValueError(
            f"{domain!r} is not a domain name (letters, digits, dashes and dots; no port or scheme)"
        )
    return value


def check_instance_name(name: str) -> str:
    """The trimmed name; ValueError saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return name


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


# Trusted domains: names an instance answers to in its URLs (behind a proxy, a
# custom login UI) that do not route requests, so they need not be unique.
instance_trusted_domains_table = Table(
    "instance_trusted_domains",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("domain", Text, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)


class InstanceTrustedDomainsProjection(Projection):
    name = "instance_trusted_domains"
    version = 1
    inline = True
    tables = (instance_trusted_domains_table,)

    @handles(InstanceTrustedDomainAdded.TYPE)
    def added(self, e: StoredEvent) -> list[Statement]:
        return [
            Put(
                instance_trusted_domains_table,
                {
                    "instance_id": e.aggregate_id,
                    "domain": e.payload["domain"],
                    "created_at": e.created_at,
                },
            )
        ]

    @handles(InstanceTrustedDomainRemoved.TYPE)
    def removed(self, e: StoredEvent) -> list[Statement]:
        return [
            Remove(
                instance_trusted_domains_table,
                {"instance_id": e.aggregate_id, "domain": e.payload["domain"]},
            )
        ]

    @handles(InstanceRemoved.TYPE)
    def instance_removed(self, e: StoredEvent) -> list[Statement]:
        return [RemoveWhere(instance_trusted_domains_table, {"instance_id": e.aggregate_id})]


class InstanceState(WriteModel):
    """An instance as its commands see it: name, domains, trusted domains."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.name = ""
        self.removed = False
        self.domains: dict[str, bool] = {}  # domain -> generated
        self.primary_domain = ""
        self.trusted_domains: set[str] = set()

    @property
    def exists(self) -> bool:
        return bool(self.name) and not self.removed

    @applies(InstanceAdded.TYPE, InstanceChanged.TYPE)
    def named(self, e: StoredEvent) -> None:
        self.name = e.payload["name"]

    @applies(InstanceRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.removed = True

    @applies(InstanceDomainAdded.TYPE)
    def on_domain_added(self, e: StoredEvent) -> None:
        self.domains[e.payload["domain"]] = bool(e.payload.get("generated", False))

    @applies(InstanceDomainPrimarySet.TYPE)
    def on_primary_set(self, e: StoredEvent) -> None:
        self.primary_domain = e.payload["domain"]

    @applies(InstanceDomainRemoved.TYPE)
    def on_domain_removed(self, e: StoredEvent) -> None:
        self.domains.pop(e.payload["domain"], None)

    @applies(InstanceTrustedDomainAdded.TYPE)
    def on_trusted_added(self, e: StoredEvent) -> None:
        self.trusted_domains.add(e.payload["domain"])

    @applies(InstanceTrustedDomainRemoved.TYPE)
    def on_trusted_removed(self, e: StoredEvent) -> None:
        self.trusted_domains.discard(e.payload["domain"])


def rename_instance(state: InstanceState, name: str) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(), [InstanceChanged(name=name)], expected_sequence=state.sequence
    )


def add_custom_domain(state: InstanceState, domain: str) -> AggregateChanges:
    """Add a routing domain, claimed across every instance (ValueError when already ours)."""
    if domain in state.domains:
        raise ValueError(f"the instance already has the domain {domain}")
    return add_domain(state.id, domain, expected_sequence=state.sequence)


def remove_custom_domain(state: InstanceState, domain: str) -> AggregateChanges:
    """Remove a routing domain: LookupError when the instance has no such domain,
    ValueError for the primary or a generated one."""
    if domain not in state.domains:
        raise LookupError(domain)
    if domain == state.primary_domain:
        raise ValueError(f"{domain} is the instance's primary domain and cannot be removed")
    if state.domains[domain]:
        raise ValueError(f"{domain} is the instance's generated domain and cannot be removed")
    return AggregateChanges(
        state.aggregate(),
        [InstanceDomainRemoved(domain=domain)],
        expected_sequence=state.sequence,
        unique=[RemoveUnique("instance_domain", domain, is_global=True)],
    )


def add_trusted_domain(state: InstanceState, domain: str) -> AggregateChanges:
    if domain in state.trusted_domains:
        raise ValueError(f"the instance already trusts the domain {domain}")
    return AggregateChanges(
        state.aggregate(),
        [InstanceTrustedDomainAdded(domain=domain)],
        expected_sequence=state.sequence,
    )


def remove_trusted_domain(state: InstanceState, domain: str) -> AggregateChanges:
    if domain not in state.trusted_domains:
        raise LookupError(domain)
    return AggregateChanges(
        state.aggregate(),
        [InstanceTrustedDomainRemoved(domain=domain)],
        expected_sequence=state.sequence,
    )


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
