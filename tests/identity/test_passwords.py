"""Passwords of users: the login's check (rehash, lockout), complexity, imported hashes."""

from __future__ import annotations

import asyncio
from typing import Any

import bcrypt
import pytest
from argon2 import PasswordHasher as Argon2Hasher
from sqlalchemy import select

from donjon.core import ids
from donjon.core.events import AggregateChanges
from donjon.core.eventstore.query import EventQuery
from donjon.core.identity import user_events as ev
from donjon.core.identity import user_password
from donjon.core.identity.orgs import orgs_table
from donjon.core.identity.user_password import (
    PasswordCheck,
    PasswordRejected,
    check_imported_hash,
    check_password,
    hash_new_password,
    password_check,
)
from donjon.core.identity.users import HumanAdded, UserState, get_user, new_user
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

MAX_ATTEMPTS = 3


@pytest.fixture
def settings(database: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Cheap argon2 and a lockout after MAX_ATTEMPTS failed password checks."""
    return make_settings(
        database,
        SystemDefaults={"PasswordHasher": {"Hasher": {"Time": 1, "Memory": 1024, "Threads": 1}}},
        DefaultInstance={"LockoutPolicy": {"MaxPasswordAttempts": MAX_ATTEMPTS}},
    )


async def _first_org(runtime: Any) -> tuple[str, str]:
    async with runtime.db.read() as conn:
        row = (await conn.execute(select(orgs_table.c.instance_id, orgs_table.c.id))).first()
    assert row is not None
    return row.instance_id, row.id


async def _human(runtime: Any, password_hash: str) -> tuple[str, str]:
    instance_id, org_id = await _first_org(runtime)
    user_id = ids.new_id()
    username = f"u{user_id}"
    added = HumanAdded(
        username=username,
        first_name="A",
        last_name="B",
        email="a@example.com",
        email_verified=True,
        password_hash=password_hash,
    )
    await runtime.store.push(
        new_user(instance_id, user_id, org_id, [added], username), creator="test"
    )
    return instance_id, user_id


async def _types(runtime: Any, instance_id: str, user_id: str) -> list[str]:
    return [e.type for e in await runtime.store.aggregate_events(instance_id, "user", user_id)]


async def _stored_hash(runtime: Any, instance_id: str, user_id: str) -> str:
    async with runtime.db.read() as conn:
        row = await get_user(conn, instance_id, user_id)
    assert row is not None
    return str(row["password_hash"])


async def test_an_imported_bcrypt_hash_is_replaced_by_argon2id_on_login(runtime: Any) -> None:
    imported = bcrypt.hashpw(b"Imported-1", bcrypt.gensalt(4)).decode()
    instance_id, user_id = await _human(runtime, imported)
    assert await check_password(runtime, instance_id, user_id, "Imported-1") is True
    assert (await _types(runtime, instance_id, user_id))[-2:] == [
        "user.human.password.hash.updated",
        "user.human.password.check.succeeded",
    ]
    upgraded = await _stored_hash(runtime, instance_id, user_id)
    assert upgraded.startswith("$argon2id$")
    # The new hash verifies, and needs no second upgrade.
    assert await check_password(runtime, instance_id, user_id, "Imported-1") is True
    assert (await _types(runtime, instance_id, user_id))[
        -1
    ] == "user.human.password.check.succeeded"
    assert await _stored_hash(runtime, instance_id, user_id) == upgraded


async def test_an_argon2_hash_of_another_cost_is_rehashed(runtime: Any) -> None:
    costly = Argon2Hasher(time_cost=2, memory_cost=2048, parallelism=1).hash("Other-cost-1")
    instance_id, user_id = await _human(runtime, costly)
    assert await check_password(runtime, instance_id, user_id, "Other-cost-1") is True
    rehashed = await _stored_hash(runtime, instance_id, user_id)
    assert rehashed != costly and "t=1" in rehashed


async def test_the_user_is_locked_after_max_failed_attempts(runtime: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    for _ in range(MAX_ATTEMPTS - 1):
        assert await check_password(runtime, instance_id, user_id, "wrong") is False
    assert "user.locked" not in await _types(runtime, instance_id, user_id)
    assert await check_password(runtime, instance_id, user_id, "wrong") is False
    types = await _types(runtime, instance_id, user_id)
    assert types[-2:] == ["user.human.password.check.failed", "user.locked"]
    async with runtime.db.read() as conn:
        assert (await get_user(conn, instance_id, user_id))["state"] == "locked"  # type: ignore[index]
    # Locked: even the right password fails, and nothing more is recorded.
    assert await check_password(runtime, instance_id, user_id, "Right-pass-1") is False
    assert await _types(runtime, instance_id, user_id) == types


async def test_a_successful_check_resets_the_failure_count(runtime: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    for _ in range(2):
        for _ in range(MAX_ATTEMPTS - 1):
            assert await check_password(runtime, instance_id, user_id, "wrong") is False
        assert await check_password(runtime, instance_id, user_id, "Right-pass-1") is True
    assert "user.locked" not in await _types(runtime, instance_id, user_id)


async def test_lockout_is_off_when_max_attempts_is_zero(runtime: Any, monkeypatch: Any) -> None:
    async def never(*_: Any) -> int:
        return 0

    monkeypatch.setattr(user_password, "max_password_attempts", never)
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    for _ in range(MAX_ATTEMPTS + 2):
        assert await check_password(runtime, instance_id, user_id, "wrong") is False
    assert "user.locked" not in await _types(runtime, instance_id, user_id)


async def test_unknown_users_and_users_without_password_fail_quietly(runtime: Any) -> None:
    instance_id, _ = await _first_org(runtime)
    before = await runtime.store.max_position()
    assert await check_password(runtime, instance_id, "nobody", "x") is False
    _, no_password = await _human(runtime, "")
    after_add = await runtime.store.max_position()
    assert await check_password(runtime, instance_id, no_password, "x") is False
    assert await runtime.store.max_position() == after_add > before


async def test_concurrent_logins_of_one_user_all_succeed(runtime: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    checks = [check_password(runtime, instance_id, user_id, "Right-pass-1") for _ in range(16)]
    assert await asyncio.gather(*checks) == [True] * 16
    types = await _types(runtime, instance_id, user_id)
    assert types.count("user.human.password.check.succeeded") == 16


async def test_concurrent_wrong_passwords_lock_the_user_exactly_at_the_limit(
    runtime: Any,
) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    wrong = [check_password(runtime, instance_id, user_id, "wrong") for _ in range(12)]
    assert await asyncio.gather(*wrong) == [False] * 12
    types = await _types(runtime, instance_id, user_id)
    # The checks after the one that locked found the user locked: not recorded.
    assert types[1:] == ["user.human.password.check.failed"] * MAX_ATTEMPTS + ["user.locked"]
    async with runtime.db.read() as conn:
        row = await get_user(conn, instance_id, user_id)
    assert row is not None
    assert (row["state"], row["password_check_failed_count"]) == ("locked", MAX_ATTEMPTS)
    assert await password_check(runtime, instance_id, user_id, "Right-pass-1") == (
        PasswordCheck.LOCKED
    )
    assert await _types(runtime, instance_id, user_id) == types


async def test_a_lock_is_never_lost_when_right_and_wrong_passwords_race(runtime: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    attempts = ["wrong", "Right-pass-1"] * 8
    results = await asyncio.gather(
        *(check_password(runtime, instance_id, user_id, p) for p in attempts)
    )
    assert results.count(True) <= 8 and not any(results[0::2])
    # Whatever the order, the history is one a sequential run could write:
    # failures in a row lock at the limit, and nothing is checked once locked.
    failures, locked = 0, False
    for kind in (await _types(runtime, instance_id, user_id))[1:]:
        assert not locked, f"{kind} recorded on a locked user"
        if kind == "user.human.password.check.succeeded":
            failures = 0
        elif kind == "user.human.password.check.failed":
            failures += 1
            assert failures <= MAX_ATTEMPTS
        else:
            assert (kind, failures) == ("user.locked", MAX_ATTEMPTS)
            locked = True
    assert locked == (failures == MAX_ATTEMPTS)
    async with runtime.db.read() as conn:
        row = await get_user(conn, instance_id, user_id)
    assert row is not None
    assert (row["state"] == "locked", row["password_check_failed_count"]) == (locked, failures)
    # The write model folds the same history to the same count.
    state = await UserState.load(runtime.store, instance_id, user_id)
    assert state.failed_password_attempts == failures


async def test_unlocking_resets_the_failure_count(runtime: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    for _ in range(MAX_ATTEMPTS):
        assert await check_password(runtime, instance_id, user_id, "wrong") is False
    state = await UserState.load(runtime.store, instance_id, user_id)
    await runtime.store.push(
        AggregateChanges(state.aggregate(), [ev.UserUnlocked()], expected_sequence=state.sequence),
        creator="admin",
    )
    # A fresh count: the next failure does not lock again at once.
    assert await password_check(runtime, instance_id, user_id, "wrong") == PasswordCheck.WRONG
    assert await password_check(runtime, instance_id, user_id, "Right-pass-1") == PasswordCheck.OK


async def test_a_login_reads_the_users_row_not_the_history(runtime: Any, monkeypatch: Any) -> None:
    good = await runtime.passwords.hash("Right-pass-1")
    instance_id, user_id = await _human(runtime, good)
    state = await UserState.load(runtime.store, instance_id, user_id)
    past = [ev.HumanPasswordCheckSucceeded(), ev.HumanPasswordCheckFailed()] * 1500
    await runtime.store.push(AggregateChanges(state.aggregate(), past), creator=user_id)
    read: list[Any] = []
    query = runtime.store.query

    async def counting(q: EventQuery, **kwargs: Any) -> Any:
        found = await query(q, **kwargs)
        if user_id in q.aggregate_ids:  # a read of its history (not a projection's catch-up)
            read.extend(found)
        return found

    monkeypatch.setattr(runtime.store, "query", counting)
    assert await check_password(runtime, instance_id, user_id, "Right-pass-1") is True
    assert await check_password(runtime, instance_id, user_id, "wrong") is False
    assert read == []  # none of its 3,001 events
    assert (await _types(runtime, instance_id, user_id))[-2:] == [
        "user.human.password.check.succeeded",
        "user.human.password.check.failed",
    ]


async def test_a_password_changed_during_the_check_is_verified_again(
    runtime: Any, monkeypatch: Any
) -> None:
    old = await runtime.passwords.hash("Old-pass-1")
    instance_id, user_id = await _human(runtime, old)
    new = await runtime.passwords.hash("New-pass-1")
    verify = runtime.passwords.verify
    verified: list[str] = []

    async def changed_meanwhile(encoded: str, password: str) -> Any:
        result = await verify(encoded, password)
        if not verified:  # the user changes its password while the login hashes
            state = await UserState.load(runtime.store, instance_id, user_id)
            await runtime.store.push(
                AggregateChanges(state.aggregate(), [ev.HumanPasswordChanged(new)]),
                creator=user_id,
            )
        verified.append(encoded)
        return result

    monkeypatch.setattr(runtime.passwords, "verify", changed_meanwhile)
    assert await password_check(runtime, instance_id, user_id, "Old-pass-1") == (
        PasswordCheck.WRONG
    )
    assert verified == [old, new]
    assert (await _types(runtime, instance_id, user_id))[-2:] == [
        "user.human.password.changed",
        "user.human.password.check.failed",
    ]


async def test_new_passwords_must_meet_the_complexity_policy(runtime: Any) -> None:
    instance_id, org_id = await _first_org(runtime)
    with pytest.raises(PasswordRejected, match="^must have at least 8 characters, an upper"):
        await hash_new_password(runtime, instance_id, org_id, "abc")
    with pytest.raises(PasswordRejected, match="must not be empty"):
        await hash_new_password(runtime, instance_id, org_id, "")
    encoded = await hash_new_password(runtime, instance_id, org_id, "Good-Passw0rd")
    assert encoded.startswith("$argon2id$")


def test_only_bcrypt_and_argon2_hashes_can_be_imported() -> None:
    bcrypt_hash = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    for prefix in ("$2a$", "$2b$", "$2y$"):
        variant = prefix + bcrypt_hash[4:]
        assert check_imported_hash(variant) == variant
    argon = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1).hash("x")
    assert check_imported_hash(argon) == argon
    for bad in ("", "plain", "$1$abc$def", "$5$rounds=5000$salt$hash", "$2b$10$short"):
        with pytest.raises(PasswordRejected):
            check_imported_hash(bad)
