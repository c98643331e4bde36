"""UserService over Connect JSON: machine users' PATs, keys and secrets, metadata, permissions."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def machine(api: Api, username: str, **extra: Any) -> str:
    body = {"username": username, "machine": {"name": username}, **extra}
    return (await api.ok("user", "CreateUser", body))["id"]


async def machine_with_token(api: Api, username: str, **extra: Any) -> tuple[str, Api]:
    user_id = await machine(api, username, **extra)
    token = (await api.ok("user", "AddPersonalAccessToken", {"userId": user_id}))["token"]
    return user_id, api.as_token(token)


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_personal_access_tokens_authenticate_until_removed(api: Api) -> None:
    user_id = await machine(api, "pat-bot")
    added = await api.ok(
        "user",
        "AddPersonalAccessToken",
        {"userId": user_id, "expirationDate": "2999-01-01T00:00:00Z"},
    )
    assert len(added["token"]) >= 43 and added["creationDate"].endswith("Z")
    as_bot = api.as_token(added["token"])
    me = await as_bot.ok("user", "GetUserByID", {"userId": user_id})
    assert me["user"]["username"] == "pat-bot"
    listed = await api.ok(
        "user", "ListPersonalAccessTokens", {"filters": [{"userIdFilter": {"id": user_id}}]}
    )
    assert listed["pagination"]["totalResult"] == "1"
    [token] = listed["result"]
    assert token["id"] == added["tokenId"] and token["organizationId"] == api.org_id
    assert token["expirationDate"] == "2999-01-01T00:00:00Z"
    assert added["token"] not in json.dumps(listed)
    events = await api.runtime.store.aggregate_events(api.instance_id, "user", user_id)
    assert added["token"] not in json.dumps([e.payload for e in events])
    await api.ok(
        "user", "RemovePersonalAccessToken", {"userId": user_id, "tokenId": added["tokenId"]}
    )
    assert (await as_bot.error("user", "GetUserByID", {"userId": user_id}))[:2] == (
        401,
        "unauthenticated",
    )
    assert (
        await api.error(
            "user", "RemovePersonalAccessToken", {"userId": user_id, "tokenId": added["tokenId"]}
        )
    )[1] == "not_found"


async def test_pat_bad_input(api: Api) -> None:
    user_id = await machine(api, "pat-bad")
    human = await api.ok(
        "user",
        "AddHumanUser",
        {"profile": {"givenName": "H", "familyName": "U"}, "email": {"email": "h@example.com"}},
    )
    before = await api.runtime.store.max_position()
    for body, expected in (
        ({"userId": user_id, "expirationDate": "yesterday"}, "expirationDate:"),
        ({"userId": user_id, "expirationDate": "2001-01-01T00:00:00Z"}, "expirationDate: must be"),
        ({}, "userId: is required"),
    ):
        status, code, message = await api.error("user", "AddPersonalAccessToken", body)
        assert (status, code) == (400, "invalid_argument") and message.startswith(expected)
    assert (await api.error("user", "AddPersonalAccessToken", {"userId": human["userId"]}))[
        1
    ] == "failed_precondition"
    assert (await api.error("user", "ListPersonalAccessTokens", {"filters": [{}]}))[2].startswith(
        "filters.0: set exactly one of"
    )
    assert await api.runtime.store.max_position() == before


async def test_a_locked_or_deactivated_machine_user_token_stops_working(api: Api) -> None:
    user_id, as_bot = await machine_with_token(api, "lock-bot")
    await as_bot.ok("user", "GetUserByID", {"userId": user_id})
    await api.ok("user", "LockUser", {"userId": user_id})
    assert (await as_bot.error("user", "GetUserByID", {"userId": user_id}))[0] == 401
    await api.ok("user", "UnlockUser", {"userId": user_id})
    await as_bot.ok("user", "GetUserByID", {"userId": user_id})
    await api.ok("user", "DeactivateUser", {"userId": user_id})
    assert (await as_bot.error("user", "GetUserByID", {"userId": user_id}))[0] == 401
    await api.ok("user", "ReactivateUser", {"userId": user_id})
    await as_bot.ok("user", "GetUserByID", {"userId": user_id})
    await api.ok("user", "DeleteUser", {"userId": user_id})
    assert (await as_bot.error("user", "GetUserByID", {"userId": user_id}))[0] == 401


async def test_a_user_without_membership_is_denied_but_may_read_itself(api: Api) -> None:
    other = await api.ok(
        "user",
        "AddHumanUser",
        {"profile": {"givenName": "O", "familyName": "T"}, "email": {"email": "o@example.com"}},
    )
    user_id, as_bot = await machine_with_token(api, "nobody-bot")
    before = await api.runtime.store.max_position()
    denied = [
        ("GetUserByID", {"userId": other["userId"]}),
        (
            "AddHumanUser",
            {"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "a@example.com"}},
        ),
        ("CreateUser", {"machine": {"name": "x"}}),
        ("LockUser", {"userId": other["userId"]}),
        ("DeleteUser", {"userId": other["userId"]}),
        ("UpdateHumanUser", {"userId": other["userId"], "username": "stolen"}),
        ("SetPassword", {"userId": other["userId"], "newPassword": {"password": "Xx1!xxxxx"}}),
        ("AddPersonalAccessToken", {"userId": user_id}),
        ("AddKey", {"userId": user_id}),
        ("AddSecret", {"userId": user_id}),
        ("SetUserMetadata", {"userId": user_id, "metadata": [{"key": "k", "value": "dg=="}]}),
        ("ListUserMetadata", {"userId": other["userId"]}),
    ]
    for method, body in denied:
        status, code, _ = await as_bot.error("user", method, body)
        assert (status, code) == (403, "permission_denied"), method
    assert await api.runtime.store.max_position() == before
    listed = await as_bot.ok("user", "ListUsers")
    assert [u["userId"] for u in listed["result"]] == [user_id]
    tokens = await as_bot.ok("user", "ListPersonalAccessTokens")
    assert {t["userId"] for t in tokens["result"]} == {user_id}
    # It may change its own profile-level data, but not lock itself.
    await as_bot.ok("user", "UpdateUser", {"userId": user_id, "machine": {"description": "me"}})
    assert (await as_bot.error("user", "LockUser", {"userId": user_id}))[0] == 403


async def test_an_org_user_manager_acts_only_in_its_org(api: Api) -> None:
    manager_id, as_manager = await machine_with_token(api, "manager-bot")
    org_id = (
        await api.ok(
            "org",
            "AddOrganization",
            {"name": "Managed", "admins": [{"userId": manager_id, "roles": ["ORG_USER_MANAGER"]}]},
        )
    )["organizationId"]
    body = {"profile": {"givenName": "M", "familyName": "U"}, "email": {"email": "m@example.com"}}
    created = await as_manager.ok(
        "user", "AddHumanUser", {**body, "organization": {"orgId": org_id}}
    )
    # Without a header or org in the request, users go to its own org, where it may not write.
    assert (await as_manager.error("user", "AddHumanUser", body))[0] == 403
    listed = await as_manager.ok("user", "ListUsers")
    assert {u["userId"] for u in listed["result"]} == {created["userId"], manager_id}
    await as_manager.ok("user", "LockUser", {"userId": created["userId"]})
    assert (await as_manager.error("user", "LockUser", {"userId": api.admin_id}))[0] == 403


async def test_add_generated_key_returns_a_key_file_once(api: Api) -> None:
    user_id = await machine(api, "key-bot")
    added = await api.ok(
        "user", "AddKey", {"userId": user_id, "expirationDate": "2999-01-01T00:00:00Z"}
    )
    key_file = json.loads(base64.b64decode(added["keyContent"]))
    assert key_file["type"] == "serviceaccount"
    assert (key_file["keyId"], key_file["userId"]) == (added["keyId"], user_id)
    assert key_file["expirationDate"] == "2999-01-01T00:00:00Z"
    private = serialization.load_pem_private_key(key_file["key"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    from donjon.core.identity.user_keys import machine_key

    async with api.runtime.db.read() as conn:
        stored = await machine_key(conn, api.instance_id, user_id, added["keyId"])
    assert stored is not None and stored.public_key == public_pem(private)
    events = await api.runtime.store.aggregate_events(api.instance_id, "user", user_id)
    assert "PRIVATE" not in json.dumps([e.payload for e in events])
    listed = await api.ok("user", "ListKeys", {"filters": [{"userIdFilter": {"id": user_id}}]})
    assert [k["id"] for k in listed["result"]] == [added["keyId"]]
    await api.ok("user", "RemoveKey", {"userId": user_id, "keyId": added["keyId"]})
    listed = await api.ok(
        "user", "ListKeys", {"filters": [{"keyIdFilter": {"id": added["keyId"]}}]}
    )
    assert listed["result"] == []
    assert (await api.error("user", "RemoveKey", {"userId": user_id, "keyId": added["keyId"]}))[
        1
    ] == ("not_found")


async def test_add_uploaded_public_keys(api: Api) -> None:
    user_id = await machine(api, "upload-bot")
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())):
        encoded = base64.b64encode(public_pem(key).encode()).decode()
        added = await api.ok("user", "AddKey", {"userId": user_id, "publicKey": encoded})
        assert "keyContent" not in added
    listed = await api.ok(
        "user",
        "ListKeys",
        {
            "filters": [{"userIdFilter": {"id": user_id}}],
            "sortingColumn": "KEY_FIELD_NAME_CREATED_DATE",
            "pagination": {"asc": True},
        },
    )
    assert listed["pagination"]["totalResult"] == "2"
    assert listed["result"][0]["expirationDate"] == "9999-01-01T00:00:00Z"
    before = await api.runtime.store.max_position()
    weak = rsa.generate_private_key(65537, 1024)
    for pem, expected in (
        (b"not a key", "publicKey: must be a PEM public key"),
        (public_pem(weak).encode(), "publicKey: an RSA key must have at least 2048 bits"),
        (
            public_pem(ed25519.Ed25519PrivateKey.generate()).encode(),
            "publicKey: must be an RSA or EC",
        ),
    ):
        body = {"userId": user_id, "publicKey": base64.b64encode(pem).decode()}
        _, code, message = await api.error("user", "AddKey", body)
        assert code == "invalid_argument" and message.startswith(expected), message
    status, code, message = await api.error(
        "user", "AddKey", {"userId": user_id, "publicKey": "%%% not base64"}
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("publicKey")
    assert await api.runtime.store.max_position() == before


async def test_client_secret_is_returned_once_and_stored_as_digest(api: Api) -> None:
    user_id = await machine(api, "secret-bot")
    secret = (await api.ok("user", "AddSecret", {"userId": user_id}))["clientSecret"]
    assert len(secret) >= 43
    from donjon.core.identity.users import get_user

    async with api.runtime.db.read() as conn:
        row = await get_user(conn, api.instance_id, user_id)
    assert row is not None and row["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    user = (await api.ok("user", "GetUserByID", {"userId": user_id}))["user"]
    assert user["machine"]["hasSecret"] is True
    await api.ok("user", "RemoveSecret", {"userId": user_id})
    user = (await api.ok("user", "GetUserByID", {"userId": user_id}))["user"]
    assert user["machine"]["hasSecret"] is False
    assert (await api.error("user", "RemoveSecret", {"userId": user_id}))[
        1
    ] == "failed_precondition"


async def test_metadata_set_list_delete(api: Api) -> None:
    user_id = await machine(api, "meta-bot")
    value = base64.b64encode(b"\x00binary\xff").decode()
    out = await api.ok(
        "user",
        "SetUserMetadata",
        {
            "userId": user_id,
            "metadata": [
                {"key": "team", "value": value},
                {"key": "tier", "value": base64.b64encode(b"gold").decode()},
            ],
        },
    )
    assert out["setDate"].endswith("Z")
    listed = await api.ok("user", "ListUserMetadata", {"userId": user_id})
    assert listed["metadata"] == [
        {"key": "team", "value": value},
        {"key": "tier", "value": base64.b64encode(b"gold").decode()},
    ]
    found = await api.ok(
        "user",
        "ListUsers",
        {
            "queries": [
                {"metadataKeyFilter": {"key": "tea", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}
            ]
        },
    )
    assert [u["userId"] for u in found["result"]] == [user_id]
    filtered = await api.ok(
        "user",
        "ListUserMetadata",
        {"userId": user_id, "filters": [{"keyFilter": {"key": "tier"}}]},
    )
    assert [m["key"] for m in filtered["metadata"]] == ["tier"]
    await api.ok("user", "DeleteUserMetadata", {"userId": user_id, "keys": ["team"]})
    listed = await api.ok("user", "ListUserMetadata", {"userId": user_id})
    assert [m["key"] for m in listed["metadata"]] == ["tier"]
    before = await api.runtime.store.max_position()
    assert (await api.error("user", "DeleteUserMetadata", {"userId": user_id, "keys": ["team"]}))[
        1
    ] == ("not_found")
    assert (
        await api.error(
            "user", "SetUserMetadata", {"userId": user_id, "metadata": [{"key": "k", "value": ""}]}
        )
    )[2] == "metadata.0.value: must not be empty"
    assert (await api.error("user", "SetUserMetadata", {"userId": user_id}))[2] == (
        "metadata: must not be empty"
    )
    assert await api.runtime.store.max_position() == before
    await api.ok("user", "DeleteUser", {"userId": user_id})
    from sqlalchemy import select

    from donjon.core.identity.user_metadata import metadata_table

    async with api.runtime.db.read() as conn:
        assert (await conn.execute(select(metadata_table))).all() == []


async def test_add_organization_with_a_new_human_admin(api: Api) -> None:
    created = await api.ok(
        "org",
        "AddOrganization",
        {
            "name": "Human Admins",
            "admins": [
                {
                    "human": {
                        "username": "boss",
                        "profile": {"givenName": "The", "familyName": "Boss"},
                        "email": {"email": "boss@example.com", "returnCode": {}},
                        "password": {"password": "Boss-Passw0rd!"},
                    }
                }
            ],
        },
    )
    [admin] = created["createdAdmins"]
    assert admin["emailCode"]
    user = (await api.ok("user", "GetUserByID", {"userId": admin["userId"]}))["user"]
    assert user["details"]["resourceOwner"] == created["organizationId"]
    assert user["preferredLoginName"] == "boss@human-admins.localhost"
    from donjon.core.identity.members import memberships_of

    async with api.runtime.db.read() as conn:
        [membership] = await memberships_of(conn, api.instance_id, admin["userId"])
    assert (
        membership.roles == ("ORG_OWNER",) and membership.resource_id == created["organizationId"]
    )
    before = await api.runtime.store.max_position()
    status, code, message = await api.error(
        "org",
        "AddOrganization",
        {
            "name": "Bad Admin",
            "admins": [
                {"human": {"profile": {"givenName": "A"}, "email": {"email": "a@example.com"}}}
            ],
        },
    )
    assert (status, code, message) == (
        400,
        "invalid_argument",
        "admins.0.human.profile.familyName: must not be empty",
    )
    _, _, message = await api.error(
        "org",
        "AddOrganization",
        {"name": "Bad Admin", "admins": [{"human": {"profile": {"givenName": 1}}}]},
    )
    assert message.startswith("admins.0.human.profile.givenName:")
    assert await api.runtime.store.max_position() == before


async def test_responses_parse_as_the_sdk_models(api: Api) -> None:
    """The official SDK's pydantic models accept what the methods answer."""
    from zitadel_client import models as m

    user_id = await machine(api, "sdk-bot")
    human = await api.ok(
        "user",
        "AddHumanUser",
        {
            "profile": {"givenName": "S", "familyName": "D", "gender": "GENDER_DIVERSE"},
            "email": {"email": "sdk@example.com", "returnCode": {}},
            "phone": {"phone": "+41791234567", "returnCode": {}},
            "password": {"password": "Sdk-Passw0rd!"},
        },
    )
    m.UserServiceAddHumanUserResponse.from_dict(human)
    checks: list[tuple[Any, str, dict[str, Any]]] = [
        (m.UserServiceGetUserByIDResponse, "GetUserByID", {"userId": human["userId"]}),
        (m.UserServiceGetUserByIDResponse, "GetUserByID", {"userId": user_id}),
        (m.UserServiceListUsersResponse, "ListUsers", {}),
        (m.UserServiceAddKeyResponse, "AddKey", {"userId": user_id}),
        (m.UserServiceListKeysResponse, "ListKeys", {}),
        (
            m.UserServiceAddPersonalAccessTokenResponse,
            "AddPersonalAccessToken",
            {"userId": user_id},
        ),
        (m.UserServiceListPersonalAccessTokensResponse, "ListPersonalAccessTokens", {}),
        (m.UserServiceAddSecretResponse, "AddSecret", {"userId": user_id}),
        (
            m.UserServiceSetUserMetadataResponse,
            "SetUserMetadata",
            {"userId": user_id, "metadata": [{"key": "k", "value": "dg=="}]},
        ),
        (m.UserServiceListUserMetadataResponse, "ListUserMetadata", {"userId": user_id}),
        (
            m.UserServiceSetEmailResponse,
            "SetEmail",
            {"userId": human["userId"], "email": "n@example.com", "returnCode": {}},
        ),
        (
            m.UserServicePasswordResetResponse,
            "PasswordReset",
            {"userId": human["userId"], "returnCode": {}},
        ),
        (m.UserServiceLockUserResponse, "LockUser", {"userId": human["userId"]}),
        (
            m.UserServiceUpdateUserResponse,
            "UpdateUser",
            {"userId": user_id, "machine": {"name": "renamed"}},
        ),
        (m.UserServiceDeleteUserResponse, "DeleteUser", {"userId": user_id}),
    ]
    for model, method, body in checks:
        data = await api.ok("user", method, body)
        parsed = model.from_dict(data)
        assert parsed is not None, method
    listed = m.UserServiceListUsersResponse.from_dict(await api.ok("user", "ListUsers", {}))
    assert listed.result and all(u.user_id for u in listed.result)
