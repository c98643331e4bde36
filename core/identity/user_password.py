"""Users' passwords: the complexity check, imported hashes, and the login's password check.

New passwords are checked against the password complexity policy of the
user's org and hashed with argon2id (`runtime.passwords`, concurrency-bounded).
Imported hashes (`hashedPassword` of the API) are taken as they are when
they are bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 PHC strings; the first
successful login replaces them with a fresh argon2id hash.

`check_password` is what a login calls: it records the check on the user
(`user.human.password.check.succeeded|failed`) and locks the user (`user.locked`)
when the lockout policy's `max_password_attempts` failures in a row are reached.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from donjon.core.errors import ConcurrencyError
from donjon.core.events import AggregateChanges, Event
from donjon.core.identity import policies
from donjon.core.identity import user_events as ev
from donjon.core.identity.passwords import UnsupportedHashError, Verification
from donjon.core.identity.users import ACTIVE, HUMAN, INITIAL, UserState

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_PASSWORD = 1024  # bytes hashed per attempt stay bounded; no one types more
_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
_ARGON2 = re.compile(
    r"^\$argon2(id|i|d)\$(v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$"
)
# A lost race with another change to the user is decided again on fresh state.
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


async def max_password_attempts(runtime: Runtime, instance_id: str, org_id: str) -> int:
    """The lockout policy's MaxPasswordAttempts for the org's users (0: never lock)."""
    async with runtime.db.read() as conn:
        policy = await policies.lockout(conn, instance_id, org_id, runtime.settings)
    return policy.max_password_attempts


async def check_password(
    runtime: Runtime,
    instance_id: str,
    user_id: str,
    password: str,
    *,
    state: UserState | None = None,
) -> bool:
    """Verify a login's password and record the check on the user.

    False, with nothing recorded, for an unknown, removed, locked or inactive
    user, or one without a password. Otherwise pushes
    `user.human.password.check.succeeded` (after `user.human.password.hash.updated`
    with a fresh argon2id hash when the stored one is bcrypt or of another
    cost) or `user.human.password.check.failed`, followed by `user.locked` when
    this failure reaches the lockout policy's `max_password_attempts` (> 0).

    `state`: the user's write model, when the caller has just loaded it (a
    user's history grows with every login: it is read once, not twice); a
    retry after a concurrent change reads it again.
    """
    verified: tuple[str, Verification] | None = None
    for attempt in range(_ATTEMPTS):
        if attempt or state is None:
            state = await UserState.load(runtime.store, instance_id, user_id)
        if state.type != HUMAN or state.state not in (ACTIVE, INITIAL) or not state.password_hash:
            return False
        if len(password.encode()) > MAX_PASSWORD:
            result = Verification(False)
        elif verified is not None and verified[0] == state.password_hash:
            result = verified[1]  # the same hash as before the lost race: no second hashing
        else:
            try:
                result = await runtime.passwords.verify(state.password_hash, password)
            except UnsupportedHashError:
                log.warning("user %s has a password hash donjon cannot verify", user_id)
                return False
            verified = (state.password_hash, result)
        events: list[Event] = []
        if result.ok:
            if result.needs_rehash:
                events.append(ev.HumanPasswordHashUpdated(await runtime.passwords.hash(password)))
            events.append(ev.HumanPasswordCheckSucceeded())
        else:
            events.append(ev.HumanPasswordCheckFailed())
            limit = await max_password_attempts(runtime, instance_id, state.owner)
            if limit > 0 and state.failed_password_attempts + 1 >= limit:
                events.append(ev.UserLocked())
        try:
            await runtime.store.push(
                AggregateChanges(state.aggregate(), events, expected_sequence=state.sequence),
                creator=user_id,
            )
        except ConcurrencyError:
            continue
        return result.ok
    raise ConcurrencyError(f"user {user_id} kept changing during a password check")
