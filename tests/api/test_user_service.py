"""UserService over Connect JSON: humans — add, get, list, update, contact, password, states."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

PASSWORD = "Secr3t-Passw0rd!"


def human(username: str = "alice", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": username,
        "profile": {"givenName": "Alice", "familyName": "Liddell"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
    }
    body.update(extra)
    return body


async def add_human(api: Api, username: str = "alice", **extra: Any) -> str:
    return (await api.ok("user", "AddHumanUser", human(username, **extra)))["userId"]


async def get_user(api: Api, user_id: str) -> dict[str, Any]:
    return (await api.ok("user", "GetUserByID", {"userId": user_id}))["user"]


async def test_add_human_user_then_get_it_with_login_names(api: Api) -> None:
    added = await api.ok(
        "user",
        "AddHumanUser",
        human(
            phone={"phone": "+41 71 123 45 67", "isVerified": True},
            password={"password": PASSWORD, "changeRequired": True},
        ),
    )
    assert added["details"]["resourceOwner"] == api.org_id
    assert "emailCode" not in added
    user = await get_user(api, added["userId"])
    assert user["userId"] == added["userId"]
    assert user["state"] == "USER_STATE_ACTIVE"
    assert user["username"] == "alice"
    assert user["loginNames"] == ["alice@donjon.localhost"]
    assert user["preferredLoginName"] == "alice@donjon.localhost"
    assert user["details"]["resourceOwner"] == api.org_id
    assert user["human"]["profile"] == {
        "givenName": "Alice",
        "familyName": "Liddell",
        "nickName": "",
        "displayName": "Alice Liddell",
        "preferredLanguage": "",
        "gender": "GENDER_UNSPECIFIED",
    }
    assert user["human"]["email"] == {"email": "alice@example.com", "isVerified": True}
    assert user["human"]["phone"] == {"phone": "+41711234567", "isVerified": True}
    assert user["human"]["passwordChangeRequired"] is True
    assert user["human"]["passwordChanged"].endswith("Z")


async def test_a_user_without_password_nor_verified_email_is_initial_until_verified(
    api: Api,
) -> None:
    added = await api.ok(
        "user",
        "AddHumanUser",
        {
            "profile": {"givenName": "Bob", "familyName": "B"},
            "email": {"email": "Bob@Example.COM", "returnCode": {}},
        },
    )
    user = await get_user(api, added["userId"])
    assert user["state"] == "USER_STATE_INITIAL"
    assert user["username"] == "Bob@example.com"  # the email, domain lower-cased
    assert user["human"]["email"]["isVerified"] is False
    code = added["emailCode"]
    assert len(code) >= 43
    status, err, message = await api.error(
        "user", "VerifyEmail", {"userId": added["userId"], "verificationCode": "x" * 43}
    )
    assert (status, err) == (400, "invalid_argument") and message.startswith("verificationCode:")
    await api.ok("user", "VerifyEmail", {"userId": added["userId"], "verificationCode": code})
    user = await get_user(api, added["userId"])
    assert user["state"] == "USER_STATE_ACTIVE"
    assert user["human"]["email"]["isVerified"] is True
    # A code is single-use.
    assert (
        await api.error(
            "user", "VerifyEmail", {"userId": added["userId"], "verificationCode": code}
        )
    )[1] == "invalid_argument"


async def test_usernames_are_unique_in_the_instance_ignoring_case(api: Api) -> None:
    await add_human(api, "carol")
    before = await api.runtime.store.max_position()
    status, code, _ = await api.error("user", "AddHumanUser", human("CAROL"))
    assert (status, code) == (409, "already_exists")
    machine = {"username": "Carol", "machine": {"name": "svc"}}
    assert (await api.error("user", "CreateUser", machine))[1] == "already_exists"
    assert await api.runtime.store.max_position() == before


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    before = await api.runtime.store.max_position()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"email": {"email": "a@example.com"}}, "profile:"),
        ({"profile": {"givenName": "A", "familyName": "B"}}, "email:"),
        ({**human(), "profile": {"givenName": "", "familyName": "B"}}, "profile.givenName:"),
        ({**human(), "profile": {"givenName": "A"}}, "profile.familyName:"),
        ({**human(), "profile": {"givenName": 5, "familyName": "B"}}, "profile.givenName:"),
        ({**human(), "email": {"email": "not-an-email"}}, "email.email:"),
        ({**human(), "phone": {"phone": "12ab"}}, "phone.phone:"),
        ({**human(), "username": "has space"}, "username:"),
        ({**human(), "password": {"password": "short"}}, "password.password: must have"),
        ({**human(), "hashedPassword": {"hash": "$1$md5$nope"}}, "hashedPassword.hash:"),
        (
            {**human(), "profile": {"givenName": "A", "familyName": "B", "gender": "X"}},
            "profile.gender:",
        ),
        ({**human(), "metadata": [{"key": "", "value": "dmFsdWU="}]}, "metadata.0.key:"),
        ({**human(), "metadata": [{"key": "k", "value": "not base64!"}]}, "metadata.0.value"),
        ({**human(), "organization": {"orgId": "nope"}}, "organization.orgId:"),
    ]
    for body, prefix in cases:
        status, code, message = await api.error("user", "AddHumanUser", body)
        assert (status, code) == (400, "invalid_argument"), (body, message)
        assert message.startswith(prefix), (prefix, message)
    assert await api.runtime.store.max_position() == before


async def test_weak_password_message_lists_what_is_missing(api: Api) -> None:
    _, _, message = await api.error(
        "user", "AddHumanUser", human(password={"password": "alllowercase"})
    )
    assert message == ("password.password: must have an upper-case letter, a digit and a symbol")


async def test_imported_bcrypt_and_argon2_hashes_are_accepted(api: Api) -> None:
    import bcrypt

    bcrypt_hash = bcrypt.hashpw(b"imported", bcrypt.gensalt(4)).decode()
    argon = await api.runtime.passwords.hash("imported")
    for name, encoded in (("bc", bcrypt_hash), ("ar", argon)):
        user_id = await add_human(api, name, hashedPassword={"hash": encoded})
        assert (await get_user(api, user_id))["state"] == "USER_STATE_ACTIVE"


async def test_user_goes_to_the_org_named_by_header_or_request(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Wonderland"}))["organizationId"]
    by_header = await api.ok(
        "user", "AddHumanUser", human("hatter"), headers={"x-zitadel-orgid": org_id}
    )
    assert by_header["details"]["resourceOwner"] == org_id
    by_body = await api.ok("user", "AddHumanUser", human("hare", organization={"orgId": org_id}))
    assert by_body["details"]["resourceOwner"] == org_id
    by_domain = await api.ok(
        "user",
        "AddHumanUser",
        human("dormouse", organization={"orgDomain": "wonderland.localhost"}),
    )
    assert by_domain["details"]["resourceOwner"] == org_id
    user = await get_user(api, by_header["userId"])
    assert user["preferredLoginName"] == "hatter@wonderland.localhost"


async def test_create_user_human_and_machine(api: Api) -> None:
    created = await api.ok(
        "user",
        "CreateUser",
        {
            "username": "dinah",
            "human": {
                "profile": {"givenName": "Dinah", "familyName": "Cat"},
                "email": {"email": "dinah@example.com", "returnCode": {}},
                "password": {"password": {"password": PASSWORD}},
            },
        },
    )
    assert created["creationDate"].endswith("Z") and created["emailCode"]
    user = await get_user(api, created["id"])
    assert user["human"]["profile"]["displayName"] == "Dinah Cat"
    machine = await api.ok(
        "user",
        "CreateUser",
        {"username": "robot", "machine": {"name": "Robot", "description": "d"}},
    )
    user = await get_user(api, machine["id"])
    assert user["machine"] == {
        "name": "Robot",
        "description": "d",
        "hasSecret": False,
        "accessTokenType": "ACCESS_TOKEN_TYPE_BEARER",
    }
    status, code, message = await api.error("user", "CreateUser", {"machine": {"name": ""}})
    assert (status, code, message) == (400, "invalid_argument", "machine.name: must not be empty")
    _, _, message = await api.error(
        "user",
        "CreateUser",
        {
            "human": {
                "profile": {"givenName": "A", "familyName": "B"},
                "email": {"email": "x@example.com"},
                "password": {"password": {"password": "weak"}},
            }
        },
    )
    assert message.startswith("human.password.password.password: must have")
    assert (await api.error("user", "CreateUser", {}))[1] == "invalid_argument"


async def test_chosen_user_id_and_unknown_ids(api: Api) -> None:
    await add_human(api, "eve", userId="my-id-1")
    assert (await get_user(api, "my-id-1"))["username"] == "eve"
    assert (await api.error("user", "AddHumanUser", human("eve2", userId="my-id-1")))[1] == (
        "already_exists"
    )
    assert (await api.error("user", "GetUserByID", {"userId": "nope"}))[:2] == (404, "not_found")
    assert (await api.error("user", "GetUserByID", {}))[2] == "userId: is required"
    for method in ("LockUser", "DeleteUser", "UpdateHumanUser", "SetEmail", "AddSecret"):
        assert (await api.error("user", method, {"userId": "nope"}))[:2] == (404, "not_found")


async def test_update_human_user_profile_email_phone_username(api: Api) -> None:
    user_id = await add_human(api, "frank")
    result = await api.ok(
        "user",
        "UpdateHumanUser",
        {
            "userId": user_id,
            "username": "franky",
            "profile": {
                "givenName": "Frank",
                "familyName": "Zappa",
                "gender": "GENDER_MALE",
                "preferredLanguage": "de-CH",
            },
            "email": {"email": "frank@zappa.example", "returnCode": {}},
            "phone": {"phone": "0041 79 000 00 00", "returnCode": {}},
        },
    )
    assert result["emailCode"] and result["phoneCode"]
    user = await get_user(api, user_id)
    assert user["username"] == "franky"
    assert user["human"]["profile"]["displayName"] == "Frank Zappa"
    assert user["human"]["profile"]["gender"] == "GENDER_MALE"
    assert user["human"]["email"] == {"email": "frank@zappa.example", "isVerified": False}
    assert user["human"]["phone"] == {"phone": "+41790000000", "isVerified": False}
    await api.ok(
        "user", "VerifyPhone", {"userId": user_id, "verificationCode": result["phoneCode"]}
    )
    assert (await get_user(api, user_id))["human"]["phone"]["isVerified"] is True
    # The old user name is free again.
    await add_human(api, "frank")
    # Nothing to change: same details, nothing written.
    before = await api.runtime.store.max_position()
    await api.ok("user", "UpdateHumanUser", {"userId": user_id, "username": "franky"})
    assert await api.runtime.store.max_position() == before
    await api.ok("user", "RemovePhone", {"userId": user_id})
    assert (await get_user(api, user_id))["human"]["phone"]["phone"] == ""


async def test_update_user_changes_only_fields_sent(api: Api) -> None:
    user_id = await add_human(api, "gina")
    out = await api.ok(
        "user", "UpdateUser", {"userId": user_id, "human": {"profile": {"nickName": "G"}}}
    )
    assert out["changeDate"].endswith("Z")
    profile = (await get_user(api, user_id))["human"]["profile"]
    assert (profile["givenName"], profile["nickName"]) == ("Alice", "G")
    machine_id = (await api.ok("user", "CreateUser", {"username": "m1", "machine": {"name": "M"}}))[
        "id"
    ]
    await api.ok("user", "UpdateUser", {"userId": machine_id, "machine": {"description": "new"}})
    assert (await get_user(api, machine_id))["machine"]["description"] == "new"
    assert (
        await api.error(
            "user", "UpdateUser", {"userId": machine_id, "human": {"profile": {"nickName": "x"}}}
        )
    )[1] == "failed_precondition"
    assert (
        await api.error(
            "user", "UpdateUser", {"userId": user_id, "human": {"profile": {"givenName": ""}}}
        )
    )[2] == "human.profile.givenName: must not be empty"


async def test_set_email_returns_a_code_stored_only_as_a_digest(api: Api) -> None:
    user_id = await add_human(api, "hank")
    out = await api.ok(
        "user", "SetEmail", {"userId": user_id, "email": "hank@new.example", "returnCode": {}}
    )
    code = out["verificationCode"]
    events = await api.runtime.store.aggregate_events(api.instance_id, "user", user_id)
    [added] = [e for e in events if e.type == "user.human.email.code.added"]
    assert code not in str(added.payload)
    import hashlib

    assert added.payload["code_digest"] == hashlib.sha256(code.encode()).hexdigest()
    await api.ok("user", "VerifyEmail", {"userId": user_id, "verificationCode": code})
    # The same verified address again: nothing to do.
    assert (await api.error("user", "SetEmail", {"userId": user_id, "email": "hank@new.example"}))[
        1
    ] == "failed_precondition"
    await api.ok(
        "user", "SetEmail", {"userId": user_id, "email": "h@x.example", "isVerified": True}
    )
    assert (await get_user(api, user_id))["human"]["email"] == {
        "email": "h@x.example",
        "isVerified": True,
    }


async def test_set_password_by_admin_current_password_or_reset_code(api: Api) -> None:
    user_id = await add_human(api, "ivy", password={"password": PASSWORD})
    new = "An0ther-Passw0rd!"
    await api.ok("user", "SetPassword", {"userId": user_id, "newPassword": {"password": new}})
    _, code, message = await api.error(
        "user",
        "SetPassword",
        {"userId": user_id, "newPassword": {"password": PASSWORD}, "currentPassword": "wrong"},
    )
    assert (code, message) == ("invalid_argument", "currentPassword: is wrong")
    await api.ok(
        "user",
        "SetPassword",
        {"userId": user_id, "newPassword": {"password": PASSWORD}, "currentPassword": new},
    )
    reset = await api.ok("user", "PasswordReset", {"userId": user_id, "returnCode": {}})
    await api.ok(
        "user",
        "SetPassword",
        {
            "userId": user_id,
            "newPassword": {"password": new, "changeRequired": True},
            "verificationCode": reset["verificationCode"],
        },
    )
    assert (await get_user(api, user_id))["human"]["passwordChangeRequired"] is True
    _, _, message = await api.error(
        "user", "SetPassword", {"userId": user_id, "newPassword": {"password": "weak"}}
    )
    assert message.startswith("newPassword.password: must have")
    assert (await api.error("user", "SetPassword", {"userId": user_id}))[2] == (
        "newPassword: is required"
    )


async def test_lock_unlock_deactivate_reactivate(api: Api) -> None:
    user_id = await add_human(api, "jack")
    await api.ok("user", "LockUser", {"userId": user_id})
    assert (await get_user(api, user_id))["state"] == "USER_STATE_LOCKED"
    assert (await api.error("user", "LockUser", {"userId": user_id}))[1] == "failed_precondition"
    await api.ok("user", "UnlockUser", {"userId": user_id})
    assert (await api.error("user", "UnlockUser", {"userId": user_id}))[1] == "failed_precondition"
    await api.ok("user", "DeactivateUser", {"userId": user_id})
    assert (await get_user(api, user_id))["state"] == "USER_STATE_INACTIVE"
    assert (await api.error("user", "DeactivateUser", {"userId": user_id}))[1] == (
        "failed_precondition"
    )
    await api.ok("user", "ReactivateUser", {"userId": user_id})
    assert (await get_user(api, user_id))["state"] == "USER_STATE_ACTIVE"


async def test_delete_user_frees_the_username_and_removes_memberships(api: Api) -> None:
    user_id = await add_human(api, "kate")
    org = await api.ok(
        "org", "AddOrganization", {"name": "Kate Org", "admins": [{"userId": user_id}]}
    )
    deleted = await api.ok("user", "DeleteUser", {"userId": user_id})
    assert deleted["details"]["changeDate"].endswith("Z")
    assert (await api.error("user", "GetUserByID", {"userId": user_id}))[1] == "not_found"
    assert (await api.error("user", "DeleteUser", {"userId": user_id}))[1] == "not_found"
    from sqlalchemy import select

    from donjon.core.identity.members import members_table

    async with api.runtime.db.read() as conn:
        rows = (
            await conn.execute(select(members_table).where(members_table.c.user_id == user_id))
        ).all()
    assert rows == [] and org["organizationId"]
    await add_human(api, "kate")


async def test_list_users_queries_sorting_and_paging(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Listing"}))["organizationId"]
    ids = {}
    for name, first in (("lu-anna", "Anna"), ("lu-bert", "Bert"), ("lu-cleo", "Cleo")):
        ids[name] = await add_human(
            api,
            name,
            organization={"orgId": org_id},
            profile={"givenName": first, "familyName": "Lister"},
        )
    await api.ok(
        "user",
        "CreateUser",
        {"organizationId": org_id, "username": "lu-bot", "machine": {"name": "Bot"}},
    )
    in_org = {"organizationIdQuery": {"organizationId": org_id}}

    async def names(*queries: dict[str, Any], **body: Any) -> list[str]:
        data = await api.ok("user", "ListUsers", {"queries": [in_org, *queries], **body})
        return [u["username"] for u in data["result"]]

    assert await names(sortingColumn="USER_FIELD_NAME_USER_NAME", query={"asc": True}) == [
        "lu-anna",
        "lu-bert",
        "lu-bot",
        "lu-cleo",
    ]
    assert await names({"typeQuery": {"type": "TYPE_MACHINE"}}) == ["lu-bot"]
    assert await names(
        {
            "firstNameQuery": {
                "firstName": "b",
                "method": "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE",
            }
        }
    ) == ["lu-bert"]
    assert await names(
        {"lastNameQuery": {"lastName": "Lister"}},
        sortingColumn=("USER_FIELD_NAME_FIRST_NAME"),
        query={"asc": True, "limit": 2, "offset": "1"},
    ) == ["lu-bert", "lu-cleo"]
    assert await names({"loginNameQuery": {"loginName": "lu-anna@listing.localhost"}}) == [
        "lu-anna"
    ]
    assert await names({"emailQuery": {"emailAddress": "lu-cleo@example.com"}}) == ["lu-cleo"]
    assert await names(
        {"inUserIdsQuery": {"userIds": [ids["lu-anna"], ids["lu-cleo"]]}},
        sortingColumn="USER_FIELD_NAME_USER_NAME",
        query={"asc": True},
    ) == ["lu-anna", "lu-cleo"]
    assert await names(
        {
            "orQuery": {
                "queries": [
                    {"userNameQuery": {"userName": "lu-anna"}},
                    {"userNameQuery": {"userName": "lu-bot"}},
                ]
            }
        },
        sortingColumn="USER_FIELD_NAME_USER_NAME",
        query={"asc": True},
    ) == ["lu-anna", "lu-bot"]
    assert await names({"notQuery": {"query": {"typeQuery": {"type": "TYPE_HUMAN"}}}}) == ["lu-bot"]
    assert await names(
        {"stateQuery": {"state": "USER_STATE_ACTIVE"}},
        {"displayNameQuery": {"displayName": "Anna Lister"}},
    ) == ["lu-anna"]
    data = await api.ok("user", "ListUsers", {"queries": [in_org], "query": {"limit": 1}})
    assert data["details"]["totalResult"] == "4" and len(data["result"]) == 1
    before = await api.runtime.store.max_position()
    for body, prefix in (
        ({"queries": [{}]}, "queries.0: set exactly one of"),
        ({"queries": [{"stateQuery": {"state": "NOPE"}}]}, "queries.0.stateQuery.state:"),
        (
            {"queries": [{"andQuery": {"queries": [{"typeQuery": {"type": "X"}}]}}]},
            "queries.0.andQuery.queries.0.typeQuery.type:",
        ),
        ({"sortingColumn": "NOPE"}, "sortingColumn:"),
        ({"query": {"limit": 5000}}, "query.limit:"),
        (
            {"queries": [{"userNameQuery": {"userName": "x", "method": "BAD"}}]},
            "queries.0.userNameQuery.method:",
        ),
    ):
        status, code, message = await api.error("user", "ListUsers", body)
        assert (status, code) == (400, "invalid_argument") and message.startswith(prefix), message
    assert await api.runtime.store.max_position() == before


async def test_user_by_login_name_finds_users_for_the_login(api: Api) -> None:
    from donjon.core.identity.user_reads import user_by_login_name

    user_id = await add_human(api, "Logan")
    async with api.runtime.db.read() as conn:
        for name in ("logan@donjon.localhost", "LOGAN@DONJON.LOCALHOST", "logan"):
            found = await user_by_login_name(conn, api.instance_id, name)
            assert found is not None and found["id"] == user_id, name
        assert await user_by_login_name(conn, api.instance_id, "logan@elsewhere.example") is None
        assert await user_by_login_name(conn, "another-instance", "logan") is None


async def test_a_human_changes_its_own_profile_and_password_only_with_proof(api: Api) -> None:
    """Humans get no PATs, so the calls are made in-process as the human itself."""
    from donjon.core.api import user_service_update as update
    from donjon.core.api.auth import Principal
    from donjon.core.api.connect import Call, ConnectError, decode

    user_id = await add_human(api, "selfie", password={"password": PASSWORD})
    other_id = await add_human(api, "other")
    me = Call(api.runtime, api.instance_id, Principal(user_id, api.org_id, api.instance_id), "")

    async def call(handler: Any, request: Any, body: dict[str, Any]) -> dict[str, Any]:
        import msgspec

        return await handler(me, decode(request, msgspec.json.encode(body)))

    await call(
        update.update_human_user,
        update.UpdateHumanUserRequest,
        {"userId": user_id, "profile": {"givenName": "Self", "familyName": "Made"}},
    )
    assert (await get_user(api, user_id))["human"]["profile"]["displayName"] == "Self Made"
    denied = [
        (
            update.update_human_user,
            update.UpdateHumanUserRequest,
            {"userId": other_id, "profile": {"givenName": "X", "familyName": "Y"}},
        ),
        # A new password without the current one, and a verified email by fiat.
        (
            update.set_password,
            update.SetPasswordRequest,
            {"userId": user_id, "newPassword": {"password": "N3w-Passw0rd!"}},
        ),
        (
            update.set_email,
            update.SetEmailRequest,
            {"userId": user_id, "email": "fake@example.com", "isVerified": True},
        ),
    ]
    for handler, request, body in denied:
        with pytest.raises(ConnectError) as exc:
            await call(handler, request, body)
        assert exc.value.code == "permission_denied"
    await call(
        update.set_password,
        update.SetPasswordRequest,
        {
            "userId": user_id,
            "newPassword": {"password": "N3w-Passw0rd!"},
            "currentPassword": PASSWORD,
        },
    )
    from donjon.core.identity.user_password import check_password

    assert await check_password(api.runtime, api.instance_id, user_id, "N3w-Passw0rd!") is True
