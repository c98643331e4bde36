"""SessionService over Connect JSON: checks, tokens, reads, lists, deletion, Bearer use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from donjon.core.eventstore.query import EventQuery
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio

SESSIONS = "zitadel.session.v2.SessionService"
PASSWORD = "Secr3t-Passw0rd!"


async def add_person(api: Api, username: str = "alice", org_id: str | None = None) -> str:
    body: dict[str, Any] = {
        "username": username,
        "profile": {"givenName": username.title(), "familyName": "Liddell"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
        "password": {"password": PASSWORD},
    }
    if org_id:
        body["organization"] = {"orgId": org_id}
    return (await api.ok("user", "AddHumanUser", body))["userId"]


async def login(
    api: Api, login_name: str = "alice@donjon.localhost", **extra: Any
) -> dict[str, Any]:
    """CreateSession with the user and password checks: {sessionId, sessionToken, details}."""
    checks = {"user": {"loginName": login_name}, "password": {"password": PASSWORD}}
    return await api.ok(SESSIONS, "CreateSession", {"checks": checks, **extra})


async def session_events(api: Api) -> list[Any]:
    return await api.runtime.store.query(
        EventQuery(instance_ids=(api.instance_id,), aggregate_types=("session",))
    )


async def test_a_login_in_two_steps_then_get_list_and_delete(api: Api) -> None:
    alice = await add_person(api)
    created = await api.ok(
        SESSIONS,
        "CreateSession",
        {
            "checks": {"user": {"loginName": "ALICE@donjon.localhost"}},
            "metadata": {"app": "d2Vi"},
            "userAgent": {
                "fingerprintId": "fp-1",
                "ip": "192.0.2.7",
                "description": "Firefox on Linux",
                "header": {"Accept-Language": {"values": ["en", "fr"]}},
            },
            "lifetime": "3600s",
        },
    )
    session_id, first_token = created["sessionId"], created["sessionToken"]
    assert len(first_token) >= 43  # 256 bits, base64
    assert created["details"]["resourceOwner"] == api.instance_id

    updated = await api.ok(
        SESSIONS,
        "SetSession",
        {
            "sessionId": session_id,
            "sessionToken": first_token,
            "checks": {"password": {"password": PASSWORD}},
        },
    )
    token = updated["sessionToken"]
    assert token != first_token
    assert int(updated["details"]["sequence"]) > int(created["details"]["sequence"])

    got = (await api.ok(SESSIONS, "GetSession", {"sessionId": session_id}))["session"]
    assert got["id"] == session_id
    assert got["sequence"] == updated["details"]["sequence"]
    user_factor = got["factors"]["user"]
    assert user_factor == {
        "verifiedAt": user_factor["verifiedAt"],
        "id": alice,
        "loginName": "alice@donjon.localhost",
        "displayName": "Alice Liddell",
        "organizationId": api.org_id,
    }
    assert set(got["factors"]) == {"user", "password"}
    assert got["factors"]["password"]["verifiedAt"] >= user_factor["verifiedAt"]
    assert got["metadata"] == {"app": "d2Vi"}
    assert got["userAgent"] == {
        "fingerprintId": "fp-1",
        "ip": "192.0.2.7",
        "description": "Firefox on Linux",
        "header": {"accept-language": {"values": ["en", "fr"]}},
    }
    assert got["expirationDate"] > got["creationDate"]

    listed = await api.ok(SESSIONS, "ListSessions", {"queries": [{"userIdQuery": {"id": alice}}]})
    assert listed["details"]["totalResult"] == "1"
    assert [s["id"] for s in listed["sessions"]] == [session_id]

    deleted = await api.ok(
        SESSIONS, "DeleteSession", {"sessionId": session_id, "sessionToken": token}
    )
    assert deleted["details"]["changeDate"]
    assert (await api.error(SESSIONS, "GetSession", {"sessionId": session_id}))[1] == "not_found"
    listed = await api.ok(SESSIONS, "ListSessions", {"queries": [{"userIdQuery": {"id": alice}}]})
    assert listed == {"details": {**listed["details"], "totalResult": "0"}, "sessions": []}
    # Deleting it again is no error.
    await api.ok(SESSIONS, "DeleteSession", {"sessionId": session_id, "sessionToken": token})
    types = [e.type for e in await session_events(api)]
    assert types == [
        "session.added",
        "session.user.checked",
        "session.metadata.set",
        "session.lifetime.set",
        "session.token.set",
        "session.password.checked",
        "session.token.set",
        "session.terminated",
    ]


async def test_a_wrong_password_is_recorded_on_the_user_and_nothing_on_the_session(
    api: Api,
) -> None:
    alice = await add_person(api)
    created = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}})
    before = await session_events(api)

    status, code, message = await api.error(
        SESSIONS,
        "SetSession",
        {"sessionId": created["sessionId"], "checks": {"password": {"password": "nope"}}},
    )
    assert (status, code) == (400, "invalid_argument")
    assert message == "checks.password.password: the password is invalid"
    assert await session_events(api) == before
    failed = await api.runtime.store.query(
        EventQuery(aggregate_ids=(alice,), event_types=("user.human.password.check.failed",))
    )
    assert len(failed) == 1
    # The wrong password creates no session either.
    status, code, _ = await api.error(
        SESSIONS,
        "CreateSession",
        {"checks": {"user": {"userId": alice}, "password": {"password": "nope"}}},
    )
    assert code == "invalid_argument"
    assert len(await session_events(api)) == len(before)
    got = (await api.ok(SESSIONS, "GetSession", {"sessionId": created["sessionId"]}))["session"]
    assert set(got["factors"]) == {"user"}


async def test_the_lockout_policy_locks_the_user_after_its_attempts(api: Api) -> None:
    alice = await add_person(api)
    await api.ok(
        "settings", "SetLockoutSettings", {"ctx": {"instance": True}, "maxPasswordAttempts": "2"}
    )
    session = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}})
    wrong = {"sessionId": session["sessionId"], "checks": {"password": {"password": "wrong"}}}
    assert (await api.error(SESSIONS, "SetSession", wrong))[1] == "invalid_argument"
    assert (await api.error(SESSIONS, "SetSession", wrong))[1] == "invalid_argument"
    user = (await api.ok("user", "GetUserByID", {"userId": alice}))["user"]
    assert user["state"] == "USER_STATE_LOCKED"

    right = {"sessionId": session["sessionId"], "checks": {"password": {"password": PASSWORD}}}
    status, code, message = await api.error(SESSIONS, "SetSession", right)
    assert (code, message) == ("failed_precondition", "checks.password: the user is locked")
    status, code, message = await api.error(
        SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}}
    )
    assert (code, message) == ("failed_precondition", "checks.user.userId: the user is locked")

    await api.ok("user", "UnlockUser", {"userId": alice})
    await api.ok(SESSIONS, "SetSession", right)


async def test_concurrent_logins_of_one_user_all_succeed(api: Api) -> None:
    alice = await add_person(api)
    body = {"checks": {"user": {"userId": alice}, "password": {"password": PASSWORD}}}
    answers = await asyncio.gather(*(api.call(SESSIONS, "CreateSession", body) for _ in range(16)))
    assert [status for status, _ in answers] == [200] * 16, answers
    assert len({data["sessionId"] for _, data in answers}) == 16
    succeeded = await api.runtime.store.query(
        EventQuery(aggregate_ids=(alice,), event_types=("user.human.password.check.succeeded",))
    )
    assert len(succeeded) == 16


async def test_concurrent_wrong_passwords_lock_the_user_once_at_the_limit(api: Api) -> None:
    alice = await add_person(api)
    await api.ok(
        "settings", "SetLockoutSettings", {"ctx": {"instance": True}, "maxPasswordAttempts": "3"}
    )
    wrong = {"checks": {"user": {"userId": alice}, "password": {"password": "wrong"}}}
    answers = await asyncio.gather(*(api.call(SESSIONS, "CreateSession", wrong) for _ in range(10)))
    codes = [data["code"] for _, data in answers]
    # A check that started before the lock is a wrong password; one after, a locked user.
    assert set(codes) <= {"invalid_argument", "failed_precondition"}, answers
    assert codes.count("invalid_argument") >= 3
    kinds = [
        e.type
        for e in await api.runtime.store.aggregate_events(api.instance_id, "user", alice)
        if e.type.startswith(("user.human.password.check", "user.locked"))
    ]
    assert kinds == ["user.human.password.check.failed"] * 3 + ["user.locked"]
    user = (await api.ok("user", "GetUserByID", {"userId": alice}))["user"]
    assert user["state"] == "USER_STATE_LOCKED"
    right = {"checks": {"user": {"userId": alice}, "password": {"password": PASSWORD}}}
    assert (await api.error(SESSIONS, "CreateSession", right))[1] == "failed_precondition"


async def test_a_user_with_thousands_of_past_logins_logs_in_without_reading_them(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from donjon.core.events import AggregateChanges
    from donjon.core.identity import user_events as ev
    from donjon.core.identity.users import UserState

    alice = await add_person(api)
    state = await UserState.load(api.runtime.store, api.instance_id, alice)
    past = [ev.HumanPasswordCheckSucceeded()] * 3000
    await api.runtime.store.push(AggregateChanges(state.aggregate(), past), creator=alice)
    store = api.runtime.store
    query = store.query
    read: list[Any] = []

    async def counting(q: EventQuery, **kwargs: Any) -> Any:
        found = await query(q, **kwargs)
        if alice in q.aggregate_ids:  # a read of alice's history
            read.extend(found)
        return found

    monkeypatch.setattr(store, "query", counting)
    await login(api)
    assert read == []
    session = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}})
    wrong = {"sessionId": session["sessionId"], "checks": {"password": {"password": "nope"}}}
    assert (await api.error(SESSIONS, "SetSession", wrong))[1] == "invalid_argument"
    assert read == []  # none of alice's 3,000 and more events, whatever the call
    monkeypatch.undo()
    types = [e.type for e in await store.aggregate_events(api.instance_id, "user", alice)]
    assert types.count("user.human.password.check.succeeded") == 3001
    assert types[-1] == "user.human.password.check.failed"


async def test_tokens_rotate_and_only_the_current_one_works(api: Api) -> None:
    await add_person(api)
    _, stranger = await machine_with_token(api, "stranger")
    created = await login(api)
    sid, t1 = created["sessionId"], created["sessionToken"]
    t2 = (await api.ok(SESSIONS, "SetSession", {"sessionId": sid, "sessionToken": t1}))[
        "sessionToken"
    ]
    assert t2 != t1
    # As a Bearer token too, only the current one works.
    alice = (await api.ok(SESSIONS, "GetSession", {"sessionId": sid}))["session"]["factors"]
    whoami = {"userId": alice["user"]["id"]}
    assert (await api.as_token(t1).error("user", "GetUserByID", whoami))[0] == 401
    await api.as_token(t2).ok("user", "GetUserByID", whoami)

    # A caller without permissions reads and updates with the current token only.
    assert (await stranger.ok(SESSIONS, "GetSession", {"sessionId": sid, "sessionToken": t2}))[
        "session"
    ]["id"] == sid
    for token in (t1, "", "made-up"):
        status, code, message = await stranger.error(
            SESSIONS, "GetSession", {"sessionId": sid, "sessionToken": token}
        )
        assert code == "permission_denied", (token, message)
    status, code, message = await stranger.error(
        SESSIONS, "SetSession", {"sessionId": sid, "sessionToken": t1}
    )
    assert (code, message) == ("permission_denied", "sessionToken: does not match the session")
    t3 = (await stranger.ok(SESSIONS, "SetSession", {"sessionId": sid, "sessionToken": t2}))[
        "sessionToken"
    ]
    assert (await stranger.error(SESSIONS, "DeleteSession", {"sessionId": sid}))[1] == (
        "permission_denied"
    )
    await stranger.ok(SESSIONS, "DeleteSession", {"sessionId": sid, "sessionToken": t3})

    # Tokens are stored as digests only.
    payloads = [e.payload for e in await session_events(api) if e.type == "session.token.set"]
    assert all(t1 not in str(p) and t2 not in str(p) for p in payloads)


async def test_a_session_token_authenticates_as_its_user_until_deleted(api: Api) -> None:
    alice = await add_person(api)
    created = await login(api)
    as_alice = api.as_token(created["sessionToken"])

    me = (await as_alice.ok("user", "GetUserByID", {"userId": alice}))["user"]
    assert me["username"] == "alice"
    # It is alice, with alice's permissions: not the admin's.
    assert (await as_alice.error("user", "GetUserByID", {"userId": api.admin_id}))[1] == (
        "permission_denied"
    )
    # A user lists and deletes its own sessions.
    other = await login(api)
    mine = await as_alice.ok(SESSIONS, "ListSessions", {})
    assert {s["id"] for s in mine["sessions"]} == {created["sessionId"], other["sessionId"]}
    await as_alice.ok(SESSIONS, "DeleteSession", {"sessionId": other["sessionId"]})

    await api.ok(SESSIONS, "DeleteSession", {"sessionId": created["sessionId"]})
    status, code, _ = await as_alice.error("user", "GetUserByID", {"userId": alice})
    assert (status, code) == (401, "unauthenticated")


async def test_only_a_session_with_an_authentication_factor_authenticates(api: Api) -> None:
    alice = await add_person(api)
    user_only = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}})
    empty = await api.ok(SESSIONS, "CreateSession", {})
    for token in (user_only["sessionToken"], empty["sessionToken"]):
        status, _, _ = await api.as_token(token).error("user", "GetUserByID", {"userId": alice})
        assert status == 401

    # An expired session no longer authenticates, nor takes more checks.
    short = await login(api, lifetime="0.001s")
    await asyncio.sleep(0.01)
    short_api = api.as_token(short["sessionToken"])
    assert (await short_api.error("user", "GetUserByID", {"userId": alice}))[0] == 401
    status, code, message = await api.error(
        SESSIONS, "SetSession", {"sessionId": short["sessionId"], "metadata": {"a": "YQ=="}}
    )
    assert (code, message) == ("failed_precondition", "sessionId: the session expired")


async def test_a_locked_or_deactivated_user_keeps_its_sessions_but_they_no_longer_authenticate(
    api: Api,
) -> None:
    alice = await add_person(api)
    session = await login(api)
    as_alice = api.as_token(session["sessionToken"])
    for lock, unlock in (("LockUser", "UnlockUser"), ("DeactivateUser", "ReactivateUser")):
        await api.ok("user", lock, {"userId": alice})
        assert (await as_alice.error("user", "GetUserByID", {"userId": alice}))[0] == 401
        got = await api.ok(SESSIONS, "GetSession", {"sessionId": session["sessionId"]})
        assert set(got["session"]["factors"]) == {"user", "password"}
        await api.ok("user", unlock, {"userId": alice})
        await as_alice.ok("user", "GetUserByID", {"userId": alice})

    # A changed password clears the password factor: the session must check it again.
    await api.ok(
        "user", "SetPassword", {"userId": alice, "newPassword": {"password": "N3w-Passw0rd!!"}}
    )
    assert (await as_alice.error("user", "GetUserByID", {"userId": alice}))[0] == 401
    got = await api.ok(SESSIONS, "GetSession", {"sessionId": session["sessionId"]})
    assert set(got["session"]["factors"]) == {"user"}

    # A deleted user takes its sessions along.
    await api.ok("user", "DeleteUser", {"userId": alice})
    assert (await api.error(SESSIONS, "GetSession", {"sessionId": session["sessionId"]}))[1] == (
        "not_found"
    )


async def test_checks_of_the_user(api: Api) -> None:
    alice = await add_person(api)
    bob = await add_person(api, "bob")
    by_name = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"loginName": "bob"}}})
    got = await api.ok(SESSIONS, "GetSession", {"sessionId": by_name["sessionId"]})
    assert got["session"]["factors"]["user"]["id"] == bob

    status, code, message = await api.error(
        SESSIONS,
        "SetSession",
        {"sessionId": by_name["sessionId"], "checks": {"user": {"userId": alice}}},
    )
    assert (code, message) == (
        "invalid_argument",
        "checks.user.userId: the session belongs to another user; create a new session",
    )
    machine_id, _ = await machine_with_token(api, "robot")
    status, code, message = await api.error(
        SESSIONS, "CreateSession", {"checks": {"user": {"userId": machine_id}}}
    )
    assert (code, message) == (
        "failed_precondition",
        "checks.user.userId: a machine user cannot log in",
    )

    org = (await api.ok("org", "AddOrganization", {"name": "Closed"}))["organizationId"]
    carol = await add_person(api, "carol", org_id=org)
    await api.ok("org", "DeactivateOrganization", {"organizationId": org})
    status, code, message = await api.error(
        SESSIONS, "CreateSession", {"checks": {"user": {"userId": carol}}}
    )
    assert (code, message) == (
        "failed_precondition",
        "checks.user.userId: the user's organization is not active",
    )


async def test_bad_input_on_every_route_is_refused_and_writes_nothing(api: Api) -> None:
    alice = await add_person(api)
    session = await api.ok(SESSIONS, "CreateSession", {"checks": {"user": {"userId": alice}}})
    sid = session["sessionId"]
    before = await api.runtime.store.query(EventQuery(instance_ids=(api.instance_id,)))
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("CreateSession", {"checks": {"user": {}}}, "invalid_argument", "checks.user: "),
        (
            "CreateSession",
            {"checks": {"user": {"userId": alice, "loginName": "alice"}}},
            "invalid_argument",
            "checks.user: ",
        ),
        (
            "CreateSession",
            {"checks": {"user": {"loginName": "nobody"}}},
            "not_found",
            "checks.user.loginName: ",
        ),
        (
            "CreateSession",
            {"checks": {"user": {"userId": 7}}},
            "invalid_argument",
            "checks.user.userId: ",
        ),
        (
            "CreateSession",
            {"checks": {"password": {"password": PASSWORD}}},
            "failed_precondition",
            "checks.password: ",
        ),
        (
            "CreateSession",
            {"checks": {"user": {"userId": alice}, "password": {}}},
            "invalid_argument",
            "checks.password.password: ",
        ),
        (
            "CreateSession",
            {"checks": {"user": {"userId": alice}, "totp": {"code": "123456"}}},
            "unimplemented",
            "checks.totp: ",
        ),
        ("CreateSession", {"checks": {"webAuthN": {}}}, "unimplemented", "checks.webAuthN: "),
        (
            "CreateSession",
            {"checks": {"idpIntent": {"idpIntentId": "1"}}},
            "unimplemented",
            "checks.idpIntent: ",
        ),
        ("CreateSession", {"checks": {"otpSms": {}}}, "unimplemented", "checks.otpSms: "),
        ("CreateSession", {"checks": {"otpEmail": {}}}, "unimplemented", "checks.otpEmail: "),
        ("CreateSession", {"challenges": {"otpSms": {}}}, "unimplemented", "challenges.otpSms: "),
        ("CreateSession", {"metadata": {"k": "not base64!"}}, "invalid_argument", "metadata"),
        ("CreateSession", {"metadata": {"": "YQ=="}}, "invalid_argument", "metadata: "),
        ("CreateSession", {"lifetime": "soon"}, "invalid_argument", "lifetime: "),
        ("CreateSession", {"lifetime": "0s"}, "invalid_argument", "lifetime: "),
        ("CreateSession", {"userAgent": {"ip": "nope"}}, "invalid_argument", "userAgent.ip: "),
        (
            "CreateSession",
            {"userAgent": {"header": {"a": {"values": "x"}}}},
            "invalid_argument",
            "userAgent.header",
        ),
        ("SetSession", {}, "invalid_argument", "sessionId: "),
        ("SetSession", {"sessionId": "404"}, "not_found", "sessionId: "),
        ("SetSession", {"sessionId": sid, "lifetime": "-1s"}, "invalid_argument", "lifetime: "),
        (
            "SetSession",
            {"sessionId": sid, "checks": {"user": {"userId": "x"}}},
            "not_found",
            "checks.user.userId: ",
        ),
        (
            "SetSession",
            {"sessionId": sid, "challenges": {"webAuthN": {}}},
            "unimplemented",
            "challenges.webAuthN: ",
        ),
        ("GetSession", {}, "invalid_argument", "sessionId: "),
        ("GetSession", {"sessionId": "404"}, "not_found", "sessionId: "),
        ("DeleteSession", {}, "invalid_argument", "sessionId: "),
        ("DeleteSession", {"sessionId": "404"}, "not_found", "sessionId: "),
        ("ListSessions", {"sortingColumn": "NAME"}, "invalid_argument", "sortingColumn: "),
        ("ListSessions", {"query": {"limit": 1001}}, "invalid_argument", "query.limit: "),
        ("ListSessions", {"queries": [{}]}, "invalid_argument", "queries.0: "),
        (
            "ListSessions",
            {"queries": [{"userIdQuery": {}}]},
            "invalid_argument",
            "queries.0.userIdQuery.id: ",
        ),
        (
            "ListSessions",
            {"queries": [{"creationDateQuery": {"creationDate": "yesterday"}}]},
            "invalid_argument",
            "queries.0.creationDateQuery.creationDate: ",
        ),
        (
            "ListSessions",
            {
                "queries": [
                    {
                        "creationDateQuery": {
                            "creationDate": "2026-01-01T00:00:00Z",
                            "method": "ABOUT",
                        }
                    }
                ]
            },
            "invalid_argument",
            "queries.0.creationDateQuery.method: ",
        ),
        (
            "ListSessions",
            {"queries": [{"userAgentQuery": {}}]},
            "invalid_argument",
            "queries.0.userAgentQuery.fingerprintId: ",
        ),
    ]
    for method, body, code, prefix in cases:
        status, got_code, message = await api.error(SESSIONS, method, body)
        assert 400 <= status < 500 or got_code == "unimplemented", (method, body, status)
        assert (got_code, message[: len(prefix)]) == (code, prefix), (method, body, message)
    after = await api.runtime.store.query(EventQuery(instance_ids=(api.instance_id,)))
    assert after == before


async def test_metadata_is_merged_and_an_empty_value_deletes_a_key(api: Api) -> None:
    session = await api.ok(SESSIONS, "CreateSession", {"metadata": {"a": "YQ==", "b": "Yg=="}})
    sid = session["sessionId"]
    await api.ok(SESSIONS, "SetSession", {"sessionId": sid, "metadata": {"a": "", "c": "Yw=="}})
    got = (await api.ok(SESSIONS, "GetSession", {"sessionId": sid}))["session"]
    assert got["metadata"] == {"b": "Yg==", "c": "Yw=="}
    assert got["factors"] == {}
    assert "expirationDate" not in got


async def test_list_sessions_filters_pages_and_sorts(api: Api) -> None:
    alice = await add_person(api)
    login_client_id, login_client = await machine_with_token(
        api, "login-client", instance_roles=["IAM_LOGIN_CLIENT"]
    )
    first = await login_client.ok(
        SESSIONS,
        "CreateSession",
        {"checks": {"user": {"userId": alice}}, "userAgent": {"fingerprintId": "fp-a"}},
    )
    second = await login_client.ok(SESSIONS, "CreateSession", {"lifetime": "60s"})
    third = await api.ok(SESSIONS, "CreateSession", {})
    ids = [first["sessionId"], second["sessionId"], third["sessionId"]]

    async def listed(body: dict[str, Any], caller: Api = api) -> list[str]:
        return [s["id"] for s in (await caller.ok(SESSIONS, "ListSessions", body))["sessions"]]

    assert await listed({"query": {"asc": True}, "queries": [{"idsQuery": {"ids": ids}}]}) == ids
    assert await listed({"queries": [{"idsQuery": {"ids": ids}}]}) == ids[::-1]
    assert (
        await listed(
            {
                "query": {"asc": True, "offset": "1", "limit": 1},
                "queries": [{"idsQuery": {"ids": ids}}],
            }
        )
        == ids[1:2]
    )
    assert await listed({"queries": [{"userIdQuery": {"id": alice}}]}) == ids[:1]
    assert await listed({"queries": [{"creatorQuery": {"id": login_client_id}}]}) == ids[1::-1]
    # No id: the caller's own.
    assert await listed({"queries": [{"creatorQuery": {}}]}, login_client) == ids[1::-1]
    assert await listed({"queries": [{"userAgentQuery": {"fingerprintId": "fp-a"}}]}) == ids[:1]
    got = (await api.ok(SESSIONS, "GetSession", {"sessionId": ids[1]}))["session"]
    created_at, expires = got["creationDate"], got["expirationDate"]
    assert (
        await listed(
            {
                "query": {"asc": True},
                "queries": [
                    {"idsQuery": {"ids": ids}},
                    {
                        "creationDateQuery": {
                            "creationDate": created_at,
                            "method": "TIMESTAMP_QUERY_METHOD_GREATER_OR_EQUALS",
                        }
                    },
                ],
            }
        )
        == ids[1:]
    )
    expiring = {"expirationDate": expires, "method": "TIMESTAMP_QUERY_METHOD_LESS_OR_EQUALS"}
    assert await listed({"queries": [{"expirationDateQuery": expiring}]}) == ids[1:2]
    later = {**expiring, "method": "TIMESTAMP_QUERY_METHOD_GREATER"}
    # Sessions without expiration never expire.
    assert await listed({"query": {"asc": True}, "queries": [{"expirationDateQuery": later}]}) == [
        ids[0],
        ids[2],
    ]
    answer = await api.ok(
        SESSIONS,
        "ListSessions",
        {"sortingColumn": "SESSION_FIELD_NAME_CREATION_DATE", "query": {"limit": 2}},
    )
    assert answer["details"]["totalResult"] == "3"
    assert len(answer["sessions"]) == 2


async def test_permissions_of_session_methods(api: Api) -> None:
    alice = await add_person(api)
    await add_person(api, "bob")
    _, nobody = await machine_with_token(api, "nobody")
    _, owner = await machine_with_token(api, "org-owner", org_roles=["ORG_OWNER"])
    _, viewer = await machine_with_token(api, "viewer", instance_roles=["IAM_OWNER_VIEWER"])
    _, login_client = await machine_with_token(
        api, "login-client", instance_roles=["IAM_LOGIN_CLIENT"]
    )
    for caller in (nobody, owner, viewer):
        assert (await caller.error(SESSIONS, "CreateSession", {}))[1] == "permission_denied"
    alices = await login(login_client)
    bobs = await login(login_client, "bob")
    sid = alices["sessionId"]

    # The login client that created them manages them; a viewer reads them.
    await login_client.ok(SESSIONS, "GetSession", {"sessionId": sid})
    await viewer.ok(SESSIONS, "GetSession", {"sessionId": sid})
    assert (await viewer.error(SESSIONS, "SetSession", {"sessionId": sid}))[1] == (
        "permission_denied"
    )
    assert (await viewer.error(SESSIONS, "DeleteSession", {"sessionId": sid}))[1] == (
        "permission_denied"
    )
    for caller in (nobody, owner):
        assert (await caller.error(SESSIONS, "GetSession", {"sessionId": sid}))[1] == (
            "permission_denied"
        )
        assert (await caller.ok(SESSIONS, "ListSessions", {}))["sessions"] == []
    viewed = await viewer.ok(SESSIONS, "ListSessions", {})
    assert {s["id"] for s in viewed["sessions"]} >= {sid, bobs["sessionId"]}

    # Alice, by her session token: her own sessions only.
    as_alice = api.as_token(alices["sessionToken"])
    assert [s["id"] for s in (await as_alice.ok(SESSIONS, "ListSessions", {}))["sessions"]] == [sid]
    assert (await as_alice.error(SESSIONS, "GetSession", {"sessionId": bobs["sessionId"]}))[
        1
    ] == "permission_denied"
    assert (await as_alice.error(SESSIONS, "DeleteSession", {"sessionId": bobs["sessionId"]}))[
        1
    ] == "permission_denied"
    assert (await as_alice.error(SESSIONS, "CreateSession", {}))[1] == "permission_denied"
    await login_client.ok(SESSIONS, "DeleteSession", {"sessionId": bobs["sessionId"]})
    assert alice


async def test_sessions_stay_in_their_instance(api: Api, tmp_path: Path) -> None:
    from donjon.core.instances_admin import HumanAdmin, MachineAdmin, NewInstance, create_instance

    await add_person(api)
    session = await login(api)
    created = await create_instance(
        api.runtime,
        NewInstance(
            name="tenant b",
            domains=("b.example",),
            org_name="b",
            human=HumanAdmin(username="alice", password=PASSWORD),
            machine=MachineAdmin(username="b-sa", pat_path=tmp_path / "b.pat"),
        ),
    )
    b_token = (tmp_path / "b.pat").read_text().strip()
    async with httpx.AsyncClient(
        transport=api.client._transport, base_url="http://b.example"
    ) as b_host:
        b_admin = Api(
            b_host,
            b_token,
            api.runtime,
            created.instance_id,
            created.org_id,
            created.machine_admin_id,
        )
        sid = session["sessionId"]
        # A's session token is unknown on B's host, and B finds none of A's sessions.
        status, _, _ = await b_admin.as_token(session["sessionToken"]).error(
            "user", "GetUserByID", {"userId": created.human_admin_id}
        )
        assert status == 401
        assert (await b_admin.error(SESSIONS, "GetSession", {"sessionId": sid}))[1] == "not_found"
        assert (await b_admin.error(SESSIONS, "DeleteSession", {"sessionId": sid}))[1] == (
            "not_found"
        )
        assert (await b_admin.ok(SESSIONS, "ListSessions", {}))["sessions"] == []
        # B's own login of its "alice": a user of B, not of A.
        b_session = await login(b_admin, "alice")
        got = await b_admin.ok(SESSIONS, "GetSession", {"sessionId": b_session["sessionId"]})
        assert got["session"]["factors"]["user"]["id"] == created.human_admin_id
        assert (await api.error(SESSIONS, "GetSession", {"sessionId": b_session["sessionId"]}))[
            1
        ] == "not_found"
    assert sid
