"""Organizations: the owners of users, projects and apps, with their domains.

An org gets a generated domain `<name>.<instance domain>` (lower-cased, runs
of other characters than letters, digits and dashes turned into one dash),
verified and primary; login names are `username@<primary domain>`. Org names
and verified domains are unique within an instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Integer, Table, Text, and_, func, select
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
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import Patch, PatchWhere, Put, Remove, RemoveWhere

AGGREGATE = "org"
ACTIVE, INACTIVE = "active", "inactive"

NAME_TAKEN = "Errors.Org.AlreadyExists"
DOMAIN_TAKEN = "Errors.Org.Domain.AlreadyExists"
MAX_NAME = 200


@dataclass(frozen=True)
class OrgAdded(Event):
    TYPE = "org.added"
    AGGREGATE_TYPE = AGGREGATE
    name: str


@dataclass(frozen=True)
class OrgChanged(Event):
    TYPE = "org.changed"
    AGGREGATE_TYPE = AGGREGATE
    name: str


@dataclass(frozen=True)
class OrgDeactivated(Event):
    TYPE = "org.deactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class OrgReactivated(Event):
    TYPE = "org.reactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class OrgRemoved(Event):
    TYPE = "org.removed"
    AGGREGATE_TYPE = AGGREGATE
    name: str = ""


@dataclass(frozen=True)
class OrgDomainAdded(Event):
    TYPE = "org.domain.added"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


@dataclass(frozen=True)
class OrgDomainVerified(Event):
    TYPE = "org.domain.verified"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


@dataclass(frozen=True)
class OrgDomainVerificationAdded(Event):
    """A challenge to prove control of a domain: `token` served over HTTP or in DNS."""

    TYPE = "org.domain.verification.added"
    AGGREGATE_TYPE = AGGREGATE
    domain: str
    validation_type: str  # http | dns
    token: str


@dataclass(frozen=True)
class OrgDomainVerificationFailed(Event):
    TYPE = "org.domain.verification.failed"
    AGGREGATE_TYPE = AGGREGATE
    domain: str
    reason: str = ""


@dataclass(frozen=True)
class OrgDomainPrimarySet(Event):
    TYPE = "org.domain.primary.set"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


@dataclass(frozen=True)
class OrgDomainRemoved(Event):
    TYPE = "org.domain.removed"
    AGGREGATE_TYPE = AGGREGATE
    domain: str


EVENT_TYPES: list[type[Event]] = [
    OrgAdded,
    OrgChanged,
    OrgDeactivated,
    OrgReactivated,
    OrgRemoved,
    OrgDomainAdded,
    OrgDomainVerified,
    OrgDomainVerificationAdded,
    OrgDomainVerificationFailed,
    OrgDomainPrimarySet,
    OrgDomainRemoved,
]

orgs_table = Table(
    "orgs",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("primary_domain", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

org_domains_table = Table(
    "org_domains",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("org_id", Text, primary_key=True),
    Column("domain", Text, primary_key=True),
    Column("is_verified", Boolean, nullable=False),
    Column("is_primary", Boolean, nullable=False),
    # http or dns once a verification challenge was asked for, else empty.
    Column("validation_type", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)


class OrgsProjection(AggregateRows):
    name = "orgs"
    version = 2
    inline = True
    tables = (orgs_table, org_domains_table)
    row_table = orgs_table

    @handles(OrgAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            self._new_row(e, {"name": e.payload["name"], "state": ACTIVE, "primary_domain": ""})
        ]

    @handles(OrgChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, name=e.payload["name"])]

    @handles(OrgDeactivated.TYPE)
    def deactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=INACTIVE)]

    @handles(OrgReactivated.TYPE)
    def reactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=ACTIVE)]

    @handles(OrgRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(orgs_table, self._key(e)),
            RemoveWhere(
                org_domains_table, {"instance_id": e.instance_id, "org_id": e.aggregate_id}
            ),
        ]

    def _domain_key(self, e: StoredEvent) -> dict[str, str]:
        return {
            "instance_id": e.instance_id,
            "org_id": e.aggregate_id,
            "domain": e.payload["domain"],
        }

    @handles(OrgDomainAdded.TYPE)
    def domain_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Put(
                org_domains_table,
                {
                    **self._domain_key(e),
                    "is_verified": False,
                    "is_primary": False,
                    "validation_type": "",
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                },
            ),
            self._touch(e),
        ]

    @handles(OrgDomainVerified.TYPE)
    def domain_verified(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                org_domains_table,
                self._domain_key(e),
                {"is_verified": True, "changed_at": e.created_at},
            ),
            self._touch(e),
        ]

    @handles(OrgDomainVerificationAdded.TYPE)
    def domain_challenge(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Patch(
                org_domains_table,
                self._domain_key(e),
                {"validation_type": e.payload["validation_type"], "changed_at": e.created_at},
            ),
            self._touch(e),
        ]

    @handles(OrgDomainPrimarySet.TYPE)
    def domain_primary(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            PatchWhere(
                org_domains_table,
                {"instance_id": e.instance_id, "org_id": e.aggregate_id},
                {"is_primary": False},
            ),
            Patch(
                org_domains_table,
                self._domain_key(e),
                {"is_primary": True, "changed_at": e.created_at},
            ),
            self._touch(e, primary_domain=e.payload["domain"]),
        ]

    @handles(OrgDomainRemoved.TYPE)
    def domain_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(org_domains_table, self._domain_key(e)), self._touch(e)]


class OrgState(WriteModel):
    """An org as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.name = ""
        self.state = ""
        self.domains: dict[str, bool] = {}  # domain -> verified
        self.primary_domain = ""
        self.challenges: dict[str, tuple[str, str]] = {}  # domain -> (type, token)

    @property
    def exists(self) -> bool:
        return self.state in (ACTIVE, INACTIVE)

    @applies(OrgAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.name = e.payload["name"]
        self.state = ACTIVE

    @applies(OrgChanged.TYPE)
    def on_changed(self, e: StoredEvent) -> None:
        self.name = e.payload["name"]

    @applies(OrgDeactivated.TYPE)
    def on_deactivated(self, e: StoredEvent) -> None:
        self.state = INACTIVE

    @applies(OrgReactivated.TYPE)
    def on_reactivated(self, e: StoredEvent) -> None:
        self.state = ACTIVE

    @applies(OrgRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.state = "removed"

    @applies(OrgDomainAdded.TYPE)
    def on_domain_added(self, e: StoredEvent) -> None:
        self.domains[e.payload["domain"]] = False

    @applies(OrgDomainVerified.TYPE)
    def on_domain_verified(self, e: StoredEvent) -> None:
        self.domains[e.payload["domain"]] = True

    @applies(OrgDomainVerificationAdded.TYPE)
    def on_challenge(self, e: StoredEvent) -> None:
        self.challenges[e.payload["domain"]] = (e.payload["validation_type"], e.payload["token"])

    @applies(OrgDomainPrimarySet.TYPE)
    def on_primary(self, e: StoredEvent) -> None:
        self.primary_domain = e.payload["domain"]

    @applies(OrgDomainRemoved.TYPE)
    def on_domain_removed(self, e: StoredEvent) -> None:
        self.domains.pop(e.payload["domain"], None)
        self.challenges.pop(e.payload["domain"], None)


_NOT_DOMAIN = re.compile(r"[^a-z0-9-]+")


def generated_domain(name: str, instance_domain: str) -> str:
    """`<name>.<instance domain>` as a valid host label: `ACME Corp` -> `acme-corp.example.com`."""
    label = _NOT_DOMAIN.sub("-", name.lower()).strip("-")[:63] or "org"
    return f"{label}.{instance_domain.lower()}"


def check_org_name(name: str) -> str:
    """The trimmed name; ValueError saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return name


def add_org(instance_id: str, org_id: str, name: str, instance_domain: str) -> AggregateChanges:
    """A new active org with its generated domain, verified and primary."""
    name = check_org_name(name)
    domain = generated_domain(name, instance_domain)
    return AggregateChanges(
        Aggregate(AGGREGATE, org_id, instance_id, org_id),
        [
            OrgAdded(name=name),
            OrgDomainAdded(domain=domain),
            OrgDomainVerified(domain=domain),
            OrgDomainPrimarySet(domain=domain),
        ],
        expected_sequence=0,
        unique=[
            AddUnique("org_name", name, NAME_TAKEN),
            AddUnique("org_domain", domain, DOMAIN_TAKEN),
        ],
    )


def rename_org(state: OrgState, name: str) -> AggregateChanges:
    name = check_org_name(name)
    return AggregateChanges(
        state.aggregate(),
        [OrgChanged(name=name)],
        expected_sequence=state.sequence,
        unique=[RemoveUnique("org_name", state.name), AddUnique("org_name", name, NAME_TAKEN)],
    )


def remove_org(state: OrgState) -> AggregateChanges:
    verified = [d for d, ok in state.domains.items() if ok]
    return AggregateChanges(
        state.aggregate(),
        [OrgRemoved(name=state.name)],
        expected_sequence=state.sequence,
        unique=[
            RemoveUnique("org_name", state.name),
            *(RemoveUnique("org_domain", d) for d in verified),
        ],
    )


_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def check_org_domain(domain: str) -> str:
    """The domain lower-cased; ValueError when it is not a host name."""
    domain = domain.strip().lower().rstrip(".")
    if not domain:
        raise ValueError("must not be empty")
    if not _DOMAIN.match(domain):
        raise ValueError(f"{domain!r} is not a domain name such as example.com")
    return domain


def add_domain(state: OrgState, domain: str, *, verified: bool) -> AggregateChanges:
    """Add `domain` to the org; verified at once when the domain policy does not ask for proof.

    A verified domain is unique in the instance (it makes login names).
    """
    events: list[Event] = [OrgDomainAdded(domain=domain)]
    unique = []
    if verified:
        events.append(OrgDomainVerified(domain=domain))
        unique.append(AddUnique("org_domain", domain, DOMAIN_TAKEN))
    return AggregateChanges(
        state.aggregate(), events, expected_sequence=state.sequence, unique=unique
    )


def verify_domain(state: OrgState, domain: str) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(),
        [OrgDomainVerified(domain=domain)],
        expected_sequence=state.sequence,
        unique=[AddUnique("org_domain", domain, DOMAIN_TAKEN)],
    )


def remove_domain(state: OrgState, domain: str) -> AggregateChanges:
    unique = [RemoveUnique("org_domain", domain)] if state.domains.get(domain) else []
    return AggregateChanges(
        state.aggregate(),
        [OrgDomainRemoved(domain=domain)],
        expected_sequence=state.sequence,
        unique=unique,
    )


# -- reads ------------------------------------------------------------------------------


async def get_org(conn: AsyncConnection, instance_id: str, org_id: str) -> dict[str, object] | None:
    row = (
        await conn.execute(
            select(orgs_table).where(
                and_(orgs_table.c.instance_id == instance_id, orgs_table.c.id == org_id)
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def org_by_domain(conn: AsyncConnection, instance_id: str, domain: str) -> str | None:
    """The id of the org with this verified domain in the instance."""
    row = (
        await conn.execute(
            select(org_domains_table.c.org_id).where(
                org_domains_table.c.instance_id == instance_id,
                org_domains_table.c.domain == domain.lower(),
                org_domains_table.c.is_verified.is_(True),
            )
        )
    ).first()
    return row[0] if row else None


async def org_by_name(conn: AsyncConnection, instance_id: str, name: str) -> str | None:
    row = (
        await conn.execute(
            select(orgs_table.c.id).where(
                orgs_table.c.instance_id == instance_id,
                func.lower(orgs_table.c.name) == name.strip().lower(),
            )
        )
    ).first()
    return row[0] if row else None
