"""The events of a user's life after it was added: profile, contact, password, state.

Named as ZITADEL names them (`user.human.profile.changed`,
`user.human.email.code.added`, `user.locked`, ...), payloads snake_case. The
events that create and remove a user, and its personal access tokens, are in
`users`; machine keys in `user_keys`; metadata in `user_metadata`.

Verification codes are never stored: an event carries the SHA-256 digest of
the code (see `secrets`) and the time it expires, as RFC 3339.
"""

from __future__ import annotations

from dataclasses import dataclass

from donjon.core.events import Event

AGGREGATE = "user"


# -- profile and user name ----------------------------------------------------------------


@dataclass(frozen=True)
class HumanProfileChanged(Event):
    """Only the fields that changed are set; None means unchanged."""

    TYPE = "user.human.profile.changed"
    AGGREGATE_TYPE = AGGREGATE
    first_name: str | None = None
    last_name: str | None = None
    nick_name: str | None = None
    display_name: str | None = None
    preferred_language: str | None = None
    gender: str | None = None


@dataclass(frozen=True)
class UsernameChanged(Event):
    TYPE = "user.username.changed"
    AGGREGATE_TYPE = AGGREGATE
    username: str
    old_username: str = ""


# -- email and phone ----------------------------------------------------------------------


@dataclass(frozen=True)
class HumanEmailChanged(Event):
    TYPE = "user.human.email.changed"
    AGGREGATE_TYPE = AGGREGATE
    email: str


@dataclass(frozen=True)
class HumanEmailCodeAdded(Event):
    TYPE = "user.human.email.code.added"
    AGGREGATE_TYPE = AGGREGATE
    code_digest: str
    expires_at: str
    url_template: str = ""
    # True when the code went back to the API caller instead of being sent.
    code_returned: bool = False


@dataclass(frozen=True)
class HumanEmailVerified(Event):
    TYPE = "user.human.email.verified"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class HumanPhoneChanged(Event):
    TYPE = "user.human.phone.changed"
    AGGREGATE_TYPE = AGGREGATE
    phone: str


@dataclass(frozen=True)
class HumanPhoneCodeAdded(Event):
    TYPE = "user.human.phone.code.added"
    AGGREGATE_TYPE = AGGREGATE
    code_digest: str
    expires_at: str
    code_returned: bool = False


@dataclass(frozen=True)
class HumanPhoneVerified(Event):
    TYPE = "user.human.phone.verified"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class HumanPhoneRemoved(Event):
    TYPE = "user.human.phone.removed"
    AGGREGATE_TYPE = AGGREGATE


# -- password -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanPasswordChanged(Event):
    TYPE = "user.human.password.changed"
    AGGREGATE_TYPE = AGGREGATE
    # argon2id, or an imported bcrypt / argon2 hash
    password_hash: str
    change_required: bool = False


@dataclass(frozen=True)
class HumanPasswordCodeAdded(Event):
    TYPE = "user.human.password.code.added"
    AGGREGATE_TYPE = AGGREGATE
    code_digest: str
    expires_at: str
    # email | sms
    notification_type: str = "email"
    url_template: str = ""
    code_returned: bool = False


@dataclass(frozen=True)
class HumanPasswordHashUpdated(Event):
    """The same password, re-hashed with the current algorithm and cost after a login."""

    TYPE = "user.human.password.hash.updated"
    AGGREGATE_TYPE = AGGREGATE
    password_hash: str


@dataclass(frozen=True)
class HumanPasswordCheckSucceeded(Event):
    TYPE = "user.human.password.check.succeeded"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class HumanPasswordCheckFailed(Event):
    TYPE = "user.human.password.check.failed"
    AGGREGATE_TYPE = AGGREGATE


# -- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserLocked(Event):
    TYPE = "user.locked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserUnlocked(Event):
    TYPE = "user.unlocked"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserDeactivated(Event):
    TYPE = "user.deactivated"
    AGGREGATE_TYPE = AGGREGATE


@dataclass(frozen=True)
class UserReactivated(Event):
    TYPE = "user.reactivated"
    AGGREGATE_TYPE = AGGREGATE


# -- machines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineChanged(Event):
    """Only the fields that changed are set; None means unchanged."""

    TYPE = "user.machine.changed"
    AGGREGATE_TYPE = AGGREGATE
    name: str | None = None
    description: str | None = None
    access_token_type: str | None = None


@dataclass(frozen=True)
class MachineSecretSet(Event):
    TYPE = "user.machine.secret.set"
    AGGREGATE_TYPE = AGGREGATE
    # SHA-256 of the client secret (see donjon.core.identity.secrets)
    digest: str


@dataclass(frozen=True)
class MachineSecretRemoved(Event):
    TYPE = "user.machine.secret.removed"
    AGGREGATE_TYPE = AGGREGATE


EVENT_TYPES: list[type[Event]] = [
    HumanProfileChanged,
    UsernameChanged,
    HumanEmailChanged,
    HumanEmailCodeAdded,
    HumanEmailVerified,
    HumanPhoneChanged,
    HumanPhoneCodeAdded,
    HumanPhoneVerified,
    HumanPhoneRemoved,
    HumanPasswordChanged,
    HumanPasswordCodeAdded,
    HumanPasswordHashUpdated,
    HumanPasswordCheckSucceeded,
    HumanPasswordCheckFailed,
    UserLocked,
    UserUnlocked,
    UserDeactivated,
    UserReactivated,
    MachineChanged,
    MachineSecretSet,
    MachineSecretRemoved,
]
