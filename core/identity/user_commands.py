"""User commands: checked input, then the events that change a user.

Checks raise ValueError saying what is wrong with a value (the API puts the
field's path in front); a change the user's state forbids (locking a locked
user) raises `Precondition`. Every change is pushed with the write model's
sequence as `expected_sequence`, so a concurrent change makes it fail instead
of being lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from donjon.core.events import AddUnique, AggregateChanges, Event, RemoveUnique
from donjon.core.identity import secrets
from donjon.core.identity import user_events as ev
from donjon.core.identity.users import (
    ACTIVE,
    HUMAN,
    INACTIVE,
    INITIAL,
    LOCKED,
    MACHINE,
    USERNAME_UNIQUE,
    PendingCode,
    UserRemoved,
    UserState,
    claim_username,
)

MAX_USERNAME = 200
MAX_NAME = 200
MAX_EMAIL = 200
# How long a verification code (email, phone, password reset) may be used.
CODE_LIFETIME = timedelta(hours=1)

# ZITADEL's check of email addresses (an RFC 5322 subset that real mailers accept).
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+[1-9][0-9]{5,14}$")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

GENDERS = ("", "female", "male", "diverse")


class Precondition(Exception):
    """The user's state does not allow the change (a Connect failed_precondition)."""


# -- checks ---------------------------------------------------------------------------------


def check_username(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_USERNAME:
        raise ValueError(f"must be at most {MAX_USERNAME} characters")
    if any(c.isspace() for c in name) or _CONTROL.search(name):
        raise ValueError("must not contain spaces or control characters")
    return name


def check_name(value: str, *, required: bool = True) -> str:
    """A given, family, nick or display name, or a machine's name (trimmed)."""
    name = value.strip()
    if required and not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    if _CONTROL.search(name):
        raise ValueError("must not contain control characters")
    return name


def check_email(value: str) -> str:
    email = value.strip()
    if not email:
        raise ValueError("must not be empty")
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise ValueError(f"{email!r} is not an email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_phone(value: str) -> str:
    """A phone number in international form, normalised to E.164 (`+41711234567`)."""
    number = _PHONE_SEPARATORS.sub("", value)
    if not number:
        raise ValueError("must not be empty")
    if number.startswith("00"):
        number = "+" + number[2:]
    if not _PHONE.match(number):
        raise ValueError(
            f"{value!r} is not a phone number in international form (such as +41 71 123 45 67)"
        )
    return number


def check_language(value: str) -> str:
    language = value.strip()
    if language and not _LANGUAGE.match(language):
        raise ValueError(f"{language!r} is not a language tag (such as en or de-CH)")
    return language


def default_display_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}".strip()


# -- verification codes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCode:
    """A fresh code: the plain value (shown once), its digest and its expiry (RFC 3339)."""

    code: str
    digest: str
    expires_at: str


def new_code(now: datetime | None = None) -> NewCode:
    code = secrets.new_secret()
    expires = (now or datetime.now(UTC)) + CODE_LIFETIME
    return NewCode(code, secrets.digest(code), expires.isoformat().replace("+00:00", "Z"))


def code_matches(pending: PendingCode | None, code: str, now: datetime | None = None) -> bool:
    """Whether `code` is the pending one and has not expired (constant-time compare)."""
    if pending is None or not code:
        return False
    if pending.expires_at is not None and pending.expires_at <= (now or datetime.now(UTC)):
        return False
    return secrets.matches(code, pending.digest)


# -- changes --------------------------------------------------------------------------------


def change(
    state: UserState, events: Iterable[Event], unique: Iterable[AddUnique | RemoveUnique] = ()
) -> AggregateChanges:
    """Events appended to an existing user, if nothing changed it since `state` was read."""
    return AggregateChanges(
        state.aggregate(), events, expected_sequence=state.sequence, unique=unique
    )


def rename(state: UserState, username: str) -> tuple[list[Event], list[AddUnique | RemoveUnique]]:
    """The event and unique changes of a new user name; none when it is the same."""
    if username == state.username:
        return [], []
    return (
        [ev.UsernameChanged(username=username, old_username=state.username)],
        [RemoveUnique(USERNAME_UNIQUE, state.username), claim_username(username)],
    )


def lock(state: UserState) -> Event:
    if state.state not in (ACTIVE, INITIAL):
        raise Precondition("only an active or initial user can be locked")
    return ev.UserLocked()


def unlock(state: UserState) -> Event:
    if state.state != LOCKED:
        raise Precondition("the user is not locked")
    return ev.UserUnlocked()


def deactivate(state: UserState) -> Event:
    if state.state == INITIAL:
        raise Precondition("a user in its initial state cannot be deactivated")
    if state.state != ACTIVE:
        raise Precondition("only an active user can be deactivated")
    return ev.UserDeactivated()


def reactivate(state: UserState) -> Event:
    if state.state != INACTIVE:
        raise Precondition("the user is not inactive")
    return ev.UserReactivated()


def remove(state: UserState) -> AggregateChanges:
    """`user.removed`, freeing the user name; read models drop its tokens, keys, metadata..."""
    return change(
        state,
        [UserRemoved(username=state.username)],
        [RemoveUnique(USERNAME_UNIQUE, state.username)],
    )


def require_human(state: UserState) -> None:
    if state.type != HUMAN:
        raise Precondition("the user is not a human user")


def require_machine(state: UserState) -> None:
    if state.type != MACHINE:
        raise Precondition("the user is not a machine user")
