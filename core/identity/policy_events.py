"""Stored policies: their events, the `policies` read model, write models and commands.

An instance stores its policies on the `instance` aggregate
(`instance.policy.password.complexity.added`, then `...changed`); an org may
store its own, overriding the instance's, on the `org` aggregate
(`org.policy.lockout.added` / `.changed`) and drop them again
(`org.policy.lockout.removed`), as in ZITADEL. Every set event carries the
whole policy, so the read model is a put of the payload.

Kinds: `password.complexity`, `lockout`, `login`, `domain`, `label` (event
names; `label` is ZITADEL's label policy, the branding); their read-model keys
are `password_complexity`, `lockout`, `login`, `domain`, `label`. A label
policy's logo and icon are asset ids; the images themselves are `asset.added`
events (`label_assets`).
The security policy is the instance's alone, as in ZITADEL: one event,
`instance.policy.security.set`, carrying the whole policy (read-model key
`security`). Which policy applies where is resolved in
`donjon.core.identity.policies`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import JSON, Column, Integer, Table, Text

from donjon.core.events import AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import policy_types
from donjon.core.identity.policy_types import (
    DomainPolicy,
    LabelPolicy,
    Lockout,
    LoginPolicy,
    PasswordComplexity,
    Policy,
    SecurityPolicy,
)
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Patch, Put, Remove, RemoveWhere

INSTANCE_AGGREGATE, ORG_AGGREGATE = "instance", "org"
# The owner type of a stored policy row.
INSTANCE, ORG = "instance", "org"


@dataclass(frozen=True)
class PolicySet(Event):
    """Base of the events that store a whole policy (its fields come from the policy type)."""

    def payload(self) -> dict[str, Any]:
        return policy_types.to_payload(self)  # type: ignore[arg-type]

    @classmethod
    def from_payload(cls, payload: dict[str, Any], revision: int) -> Self:
        return policy_types.from_payload(cls, cls.upcast(payload, revision))  # type: ignore[type-var]


# -- password complexity ------------------------------------------------------------------


@dataclass(frozen=True)
class InstancePasswordComplexityAdded(PolicySet, PasswordComplexity):
    TYPE = "instance.policy.password.complexity.added"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class InstancePasswordComplexityChanged(PolicySet, PasswordComplexity):
    TYPE = "instance.policy.password.complexity.changed"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class OrgPasswordComplexityAdded(PolicySet, PasswordComplexity):
    TYPE = "org.policy.password.complexity.added"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgPasswordComplexityChanged(PolicySet, PasswordComplexity):
    TYPE = "org.policy.password.complexity.changed"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgPasswordComplexityRemoved(Event):
    TYPE = "org.policy.password.complexity.removed"
    AGGREGATE_TYPE = ORG_AGGREGATE


# -- lockout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceLockoutAdded(PolicySet, Lockout):
    TYPE = "instance.policy.lockout.added"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class InstanceLockoutChanged(PolicySet, Lockout):
    TYPE = "instance.policy.lockout.changed"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class OrgLockoutAdded(PolicySet, Lockout):
    TYPE = "org.policy.lockout.added"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLockoutChanged(PolicySet, Lockout):
    TYPE = "org.policy.lockout.changed"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLockoutRemoved(Event):
    TYPE = "org.policy.lockout.removed"
    AGGREGATE_TYPE = ORG_AGGREGATE


# -- login --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceLoginAdded(PolicySet, LoginPolicy):
    TYPE = "instance.policy.login.added"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class InstanceLoginChanged(PolicySet, LoginPolicy):
    TYPE = "instance.policy.login.changed"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class OrgLoginAdded(PolicySet, LoginPolicy):
    TYPE = "org.policy.login.added"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLoginChanged(PolicySet, LoginPolicy):
    TYPE = "org.policy.login.changed"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLoginRemoved(Event):
    TYPE = "org.policy.login.removed"
    AGGREGATE_TYPE = ORG_AGGREGATE


# -- domain -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceDomainPolicyAdded(PolicySet, DomainPolicy):
    TYPE = "instance.policy.domain.added"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class InstanceDomainPolicyChanged(PolicySet, DomainPolicy):
    TYPE = "instance.policy.domain.changed"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class OrgDomainPolicyAdded(PolicySet, DomainPolicy):
    TYPE = "org.policy.domain.added"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgDomainPolicyChanged(PolicySet, DomainPolicy):
    TYPE = "org.policy.domain.changed"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgDomainPolicyRemoved(Event):
    TYPE = "org.policy.domain.removed"
    AGGREGATE_TYPE = ORG_AGGREGATE


# -- label (branding) ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceLabelPolicyAdded(PolicySet, LabelPolicy):
    TYPE = "instance.policy.label.added"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class InstanceLabelPolicyChanged(PolicySet, LabelPolicy):
    TYPE = "instance.policy.label.changed"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


@dataclass(frozen=True)
class OrgLabelPolicyAdded(PolicySet, LabelPolicy):
    TYPE = "org.policy.label.added"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLabelPolicyChanged(PolicySet, LabelPolicy):
    TYPE = "org.policy.label.changed"
    AGGREGATE_TYPE = ORG_AGGREGATE


@dataclass(frozen=True)
class OrgLabelPolicyRemoved(Event):
    TYPE = "org.policy.label.removed"
    AGGREGATE_TYPE = ORG_AGGREGATE


# -- security (instance only) --------------------------------------------------------------


@dataclass(frozen=True)
class InstanceSecurityPolicySet(PolicySet, SecurityPolicy):
    TYPE = "instance.policy.security.set"
    AGGREGATE_TYPE = INSTANCE_AGGREGATE


#: The read-model key of the security policy.
SECURITY = "security"


@dataclass(frozen=True)
class PolicyKind:
    """One kind of policy: its value type and its five events."""

    name: str  # the read model's key
    value_type: type[Policy]
    instance_added: type[PolicySet]
    instance_changed: type[PolicySet]
    org_added: type[PolicySet]
    org_changed: type[PolicySet]
    org_removed: type[Event]

    @property
    def set_events(self) -> tuple[type[PolicySet], ...]:
        return (self.instance_added, self.instance_changed, self.org_added, self.org_changed)


PASSWORD_COMPLEXITY = PolicyKind(
    "password_complexity",
    PasswordComplexity,
    InstancePasswordComplexityAdded,
    InstancePasswordComplexityChanged,
    OrgPasswordComplexityAdded,
    OrgPasswordComplexityChanged,
    OrgPasswordComplexityRemoved,
)
LOCKOUT = PolicyKind(
    "lockout",
    Lockout,
    InstanceLockoutAdded,
    InstanceLockoutChanged,
    OrgLockoutAdded,
    OrgLockoutChanged,
    OrgLockoutRemoved,
)
LOGIN = PolicyKind(
    "login",
    LoginPolicy,
    InstanceLoginAdded,
    InstanceLoginChanged,
    OrgLoginAdded,
    OrgLoginChanged,
    OrgLoginRemoved,
)
DOMAIN = PolicyKind(
    "domain",
    DomainPolicy,
    InstanceDomainPolicyAdded,
    InstanceDomainPolicyChanged,
    OrgDomainPolicyAdded,
    OrgDomainPolicyChanged,
    OrgDomainPolicyRemoved,
)
LABEL = PolicyKind(
    "label",
    LabelPolicy,
    InstanceLabelPolicyAdded,
    InstanceLabelPolicyChanged,
    OrgLabelPolicyAdded,
    OrgLabelPolicyChanged,
    OrgLabelPolicyRemoved,
)
KINDS: dict[str, PolicyKind] = {
    k.name: k for k in (PASSWORD_COMPLEXITY, LOCKOUT, LOGIN, DOMAIN, LABEL)
}

# The kind of every set and removed event type.
KIND_OF_EVENT: dict[str, str] = {
    cls.TYPE: k.name for k in KINDS.values() for cls in (*k.set_events, k.org_removed)
} | {InstanceSecurityPolicySet.TYPE: SECURITY}
_INSTANCE_SET = tuple(c.TYPE for k in KINDS.values() for c in k.set_events[:2])
_ORG_SET = tuple(c.TYPE for k in KINDS.values() for c in k.set_events[2:])
_ORG_REMOVED = tuple(k.org_removed.TYPE for k in KINDS.values())

EVENT_TYPES: list[type[Event]] = [
    *(cls for k in KINDS.values() for cls in (*k.set_events, k.org_removed)),
    InstanceSecurityPolicySet,
]

policies_table = Table(
    "policies",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    # The org of an org policy; the instance id for the instance's own.
    Column("owner_id", Text, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("owner_type", Text, nullable=False),  # instance | org
    # The event payload: the policy's fields (see policy_types.to_payload).
    Column("settings", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)


class PoliciesProjection(Projection):
    """`policies`: the stored instance and org policies, written in the push transaction."""

    name = "policies"
    version = 1
    inline = True
    tables = (policies_table,)

    @staticmethod
    def _key(e: StoredEvent) -> dict[str, str]:
        return {
            "instance_id": e.instance_id,
            "owner_id": e.aggregate_id,
            "kind": KIND_OF_EVENT[e.type],
        }

    @handles(*_INSTANCE_SET, *_ORG_SET)
    def stored(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        if e.type.endswith(".added"):
            return [
                Put(
                    policies_table,
                    {
                        **self._key(e),
                        "owner_type": INSTANCE if e.aggregate_type == INSTANCE_AGGREGATE else ORG,
                        "settings": dict(e.payload),
                        "created_at": e.created_at,
                        "changed_at": e.created_at,
                        "sequence": e.sequence,
                    },
                )
            ]
        return [
            Patch(
                policies_table,
                self._key(e),
                {"settings": dict(e.payload), "changed_at": e.created_at, "sequence": e.sequence},
            )
        ]

    @handles(*_ORG_REMOVED)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(policies_table, self._key(e))]

    @handles(InstanceSecurityPolicySet.TYPE)
    def security_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        # One event type for the first set and every change: the row is put whole.
        return [
            Put(
                policies_table,
                {
                    **self._key(e),
                    "owner_type": INSTANCE,
                    "settings": dict(e.payload),
                    "created_at": e.created_at,
                    "changed_at": e.created_at,
                    "sequence": e.sequence,
                },
            )
        ]

    @handles("org.removed")
    def org_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(policies_table, {"instance_id": e.instance_id, "owner_id": e.aggregate_id})
        ]

    @handles("instance.removed")
    def instance_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(policies_table, {"instance_id": e.instance_id})]


# -- write models and commands ----------------------------------------------------------


class _StoredPolicies(WriteModel):
    """The policies an aggregate (instance or org) stores, by kind: payloads."""

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.stored: dict[str, dict[str, Any]] = {}
        self.alive = False

    @property
    def exists(self) -> bool:
        return self.alive

    def policy(self, kind: PolicyKind) -> Policy | None:
        payload = self.stored.get(kind.name)
        return None if payload is None else policy_types.from_payload(kind.value_type, payload)

    @applies(*_INSTANCE_SET, *_ORG_SET, InstanceSecurityPolicySet.TYPE)
    def on_set(self, e: StoredEvent) -> None:
        self.stored[KIND_OF_EVENT[e.type]] = dict(e.payload)

    @applies(*_ORG_REMOVED)
    def on_removed(self, e: StoredEvent) -> None:
        self.stored.pop(KIND_OF_EVENT[e.type], None)


class InstancePolicies(_StoredPolicies):
    """The policies the instance aggregate stores."""

    aggregate_type = INSTANCE_AGGREGATE

    @applies("instance.added")
    def on_instance_added(self, e: StoredEvent) -> None:
        self.alive = True

    @applies("instance.removed")
    def on_instance_removed(self, e: StoredEvent) -> None:
        self.alive = False


class OrgPolicies(_StoredPolicies):
    """The policies an org aggregate stores (its overrides)."""

    aggregate_type = ORG_AGGREGATE

    @applies("org.added")
    def on_org_added(self, e: StoredEvent) -> None:
        self.alive = True

    @applies("org.removed")
    def on_org_removed(self, e: StoredEvent) -> None:
        self.alive = False
        self.stored.clear()


def set_policy(
    state: InstancePolicies | OrgPolicies, kind: PolicyKind, policy: Policy
) -> AggregateChanges | None:
    """The event storing `policy` on the instance or org; None when it is already stored."""
    if not isinstance(policy, kind.value_type):
        raise TypeError(f"a {kind.name} policy needs a {kind.value_type.__name__}")
    current = state.policy(kind)
    if current == policy:
        return None
    org = isinstance(state, OrgPolicies)
    if current is None:
        cls = kind.org_added if org else kind.instance_added
    else:
        cls = kind.org_changed if org else kind.instance_changed
    values = {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
    return AggregateChanges(state.aggregate(), [cls(**values)], expected_sequence=state.sequence)


def set_security_policy(state: InstancePolicies, policy: SecurityPolicy) -> AggregateChanges | None:
    """The event storing the instance's security policy; None when it is already stored."""
    stored = state.stored.get(SECURITY)
    if stored is not None and policy_types.from_payload(SecurityPolicy, stored) == policy:
        return None
    values = {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
    return AggregateChanges(
        state.aggregate(), [InstanceSecurityPolicySet(**values)], expected_sequence=state.sequence
    )


def remove_org_policy(state: OrgPolicies, kind: PolicyKind) -> AggregateChanges | None:
    """The event dropping the org's own policy of `kind`; None when it has none."""
    if kind.name not in state.stored:
        return None
    return AggregateChanges(
        state.aggregate(), [kind.org_removed()], expected_sequence=state.sequence
    )
