"""Users' passwords: the complexity check, imported hashes, and the login's password check.

New passwords are checked against the password complexity policy of the
user's org and hashed with argon2id (`runtime.passwords`, concurrency-bounded).
Imported hashes (`hashedPassword` of the API) are taken as they are when
they are bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 PHC strings; the first
successful login replaces them with a fresh argon2id hash.

`password_check` is what a login calls: it records the check on the user
(`user.human.password.check.succeeded|failed`) and locks the user (`user.locked`)
when the lockout policy's `max_password_attempts` failures in a row are reached.
It reads the user's `users` row, never its history (which every login
lengthens), and concurrent logins of one user do not conflict.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.errors import ConcurrencyError
from donjon.core.events import Aggregate, AggregateChanges, Event
from donjon.core.identity import policies
from donjon.core.identity import user_events as ev
from donjon.core.identity.passwords import UnsupportedHashError, Verification
from donjon.core.identity.users import (
    ACTIVE,
    AGGREGATE,
    HUMAN,
    INITIAL,
    LOCKED,
    UserState,
    users_table,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_PASSWORD = 1024  # bytes hashed per attempt stay bounded; no one types more
_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
_ARGON2 = re.compile(
    r"^\$argon2(id|i|d)\$(v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$"
)
# A password changed during a login's argon2 work is verified again, this often.
_ATTEMPTS = 3


class PasswordRejected(ValueError):
    """A password or hash the user cannot have; the message says why."""


async def password_problems(
    runtime: Runtime, instance_id: str, org_id: str, password: str
) -> list[str]:
    """What `password` lacks under the complexity policy of `org_id` (empty: it is fine)."""
    async with runtime.db.read() as conn:
        policy = await policies.password_complexity(conn, instance_id, org_id, runtime.settings)
    return policies.password_problems(policy, password)


def describe_problems(problems: list[str]) -> str:
    """`must have at least 8 characters, a digit and a symbol` from the policy's phrases."""
    items = [p.removeprefix("has ") for p in problems]
    listed = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
    return f"must have {listed}"


async def hash_new_password(runtime: Runtime, instance_id: str, org_id: str, password: str) -> str:
    """The argon2id hash of a password the org's policy accepts; PasswordRejected if not."""
    if not password:
        raise PasswordRejected("must not be empty")
    if len(password.encode()) > MAX_PASSWORD:
        raise PasswordRejected(f"must be at most {MAX_PASSWORD} bytes")
    problems = await password_problems(runtime, instance_id, org_id, password)
    if problems:
        raise PasswordRejected(describe_problems(problems))
    return await runtime.passwords.hash(password)


def check_imported_hash(encoded: str) -> str:
    """An imported hash donjon can verify (bcrypt or argon2 PHC); PasswordRejected if not."""
    encoded = encoded.strip()
    if not encoded:
        raise PasswordRejected("must not be empty")
    if not (_BCRYPT.match(encoded) or _ARGON2.match(encoded)):
        raise PasswordRejected(
            "must be a bcrypt ($2a$, $2b$, $2y$) or argon2 PHC ($argon2id$...) hash"
        )
    return encoded


async def verify_current(runtime: Runtime, state: UserState, password: str) -> bool:
    """Whether `password` is the user's current one (no events: a change proves it)."""
    if not state.password_hash or len(password.encode()) > MAX_PASSWORD:
        return False
    try:
        return (await runtime.passwords.verify(state.password_hash, password)).ok
    except UnsupportedHashError:
        log.warning("user %s has a password hash donjon cannot verify", state.id)
        return False


async def max_password_attempts(
    runtime: Runtime, instance_id: str, org_id: str, conn: AsyncConnection | None = None
) -> int:
    """The lockout policy's MaxPasswordAttempts for the org's users (0: never lock),
    read in `conn` when given."""
    if conn is not None:
        policy = await policies.lockout(conn, instance_id, org_id, runtime.settings)
        return policy.max_password_attempts
    async with runtime.db.read() as own:
        return await max_password_attempts(runtime, instance_id, org_id, own)


class PasswordCheck(StrEnum):
    """What a login's password check found (`password_check`)."""

    OK = "ok"
    WRONG = "wrong"
    NOT_FOUND = "not_found"  # no such user, or removed
    LOCKED = "locked"
    INACTIVE = "inactive"  # deactivated (or in a state other than active or initial)
    NO_PASSWORD = "no_password"  # a human without a password yet, or a machine


@dataclass(frozen=True, slots=True)
class _Login:
    """The columns of the user's `users` row a password check needs."""

    type: str
    state: str
    owner: str
    password_hash: str
    failed: int

    def refusal(self) -> PasswordCheck | None:
        """Why this user cannot log in with a password at all (None: it may try)."""
        if self.state == LOCKED:
            return PasswordCheck.LOCKED
        if self.state not in (ACTIVE, INITIAL):
            return PasswordCheck.INACTIVE
        if self.type != HUMAN or not self.password_hash:
            return PasswordCheck.NO_PASSWORD
        return None


async def _login_row(conn: AsyncConnection, instance_id: str, user_id: str) -> _Login | None:
    c = users_table.c
    row = (
        await conn.execute(
            select(
                c.type, c.state, c.resource_owner, c.password_hash, c.password_check_failed_count
            ).where(c.instance_id == instance_id, c.id == user_id)
        )
    ).first()
    return _Login(*row) if row is not None else None


async def password_check(
    runtime: Runtime, instance_id: str, user_id: str, password: str
) -> PasswordCheck:
    """Verify a login's password and record the check on the user.

    Nothing is recorded, and the password not even hashed, for a user that
    cannot log in with a password (not found, locked, inactive, without a
    password). Otherwise pushes `user.human.password.check.succeeded` (after
    `user.human.password.hash.updated` with a fresh argon2id hash when the
    stored one is bcrypt or of another cost) or
    `user.human.password.check.failed`, followed by `user.locked` when this
    failure reaches the lockout policy's `max_password_attempts` (> 0).

    The user's state comes from its `users` row, not its history, which grows
    with every login. The check events are pushed without an expected
    sequence, so logins of one user at the same moment never fail each
    other; the outcome is decided under the push lock on the row as it is
    then (`EventStore.push_decided`), so the lockout stays exact: of N
    concurrent wrong passwords, the one that reaches the limit locks, those
    after it find the user locked and record nothing, as does a right
    password once the lock is in. The argon2 work runs before the lock; when
    the password changed in between, it is verified again against the new hash.
    """
    async with runtime.db.read() as conn:
        seen = await _login_row(conn, instance_id, user_id)
        if seen is None:
            return PasswordCheck.NOT_FOUND
        if (refused := seen.refusal()) is not None:
            return refused
        limit = await max_password_attempts(runtime, instance_id, seen.owner, conn)
    for _ in range(_ATTEMPTS):
        outcome, seen = await _record(runtime, instance_id, user_id, password, seen, limit)
        if outcome is not None:
            return outcome
    raise ConcurrencyError(f"the password of user {user_id} kept changing during a login")


async def _record(
    runtime: Runtime, instance_id: str, user_id: str, password: str, seen: _Login, limit: int
) -> tuple[PasswordCheck | None, _Login]:
    """Verify against the hash `seen` and record the outcome under the push lock:
    (the outcome, the row as then). None when the hash changed meanwhile."""
    result = await _verify(runtime, user_id, seen.password_hash, password)
    rehash = ""
    if result.ok and result.needs_rehash:
        rehash = await runtime.passwords.hash(password)
    outcome: PasswordCheck | None = None
    latest = seen

    async def decide(conn: AsyncConnection) -> list[AggregateChanges]:
        nonlocal outcome, latest
        now = await _login_row(conn, instance_id, user_id)
        if now is None:
            outcome = PasswordCheck.NOT_FOUND
            return []
        latest = now
        if (refused := now.refusal()) is not None:
            outcome = refused
            return []
        if now.password_hash != seen.password_hash:
            return []  # changed since it was verified: verified again, outside the lock
        events: list[Event] = []
        if result.ok:
            if rehash:
                events.append(ev.HumanPasswordHashUpdated(rehash))
            events.append(ev.HumanPasswordCheckSucceeded())
            outcome = PasswordCheck.OK
        else:
            events.append(ev.HumanPasswordCheckFailed())
            if limit > 0 and now.failed + 1 >= limit:
                events.append(ev.UserLocked())
            outcome = PasswordCheck.WRONG
        return [AggregateChanges(Aggregate(AGGREGATE, user_id, instance_id, now.owner), events)]

    await runtime.store.push_decided(decide, creator=user_id)
    return outcome, latest


async def _verify(runtime: Runtime, user_id: str, encoded: str, password: str) -> Verification:
    """Whether `password` matches the hash `encoded`; a hash donjon cannot verify matches none."""
    if len(password.encode()) > MAX_PASSWORD:
        return Verification(False)
    try:
        return await runtime.passwords.verify(encoded, password)
    except UnsupportedHashError:
        log.warning("user %s has a password hash donjon cannot verify", user_id)
        return Verification(False)


async def check_password(runtime: Runtime, instance_id: str, user_id: str, password: str) -> bool:
    """Whether the login's password is right (`password_check`, recorded the same way)."""
    return await password_check(runtime, instance_id, user_id, password) == PasswordCheck.OK
