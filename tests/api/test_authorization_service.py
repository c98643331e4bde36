"""AuthorizationService over Connect JSON: users' roles on projects, and their cascades."""

from __future__ import annotations

import pytest

from donjon.core import ids
from donjon.core.identity import authorizations, members, secrets, users
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def machine_user(api: Api, username: str, org_id: str | None = None) -> tuple[str, str]:
    """A machine user with a PAT and no memberships: (user id, token)."""
    user_id, token = ids.new_id(), secrets.new_secret()
    await api.runtime.store.push(
        users.new_user(
            api.instance_id,
            user_id,
            org_id or api.org_id,
            [
                users.MachineAdded(username=username, name=username.title()),
                users.PersonalAccessTokenAdded(token_id=ids.new_id(), digest=secrets.digest(token)),
            ],
            username,
        ),
        creator="test",
    )
    return user_id, token


async def project_with_roles(api: Api, name: str, *keys: str) -> str:
    project_id = (await api.ok("project", "CreateProject", {"name": name}))["projectId"]
    for key in keys:
        await api.ok(
            "project",
            "AddProjectRole",
            {"projectId": project_id, "roleKey": key, "displayName": key.title(), "group": "g"},
        )
    return project_id


async def roles(api: Api, user_id: str, project_id: str) -> list[str]:
    async with api.runtime.db.read() as conn:
        return await authorizations.roles_of(conn, api.instance_id, user_id, project_id)


async def test_create_list_update_deactivate_activate_delete(api: Api) -> None:
    project_id = await project_with_roles(api, "Shop", "admin", "reader", "writer")
    user_id, _ = await machine_user(api, "alice")
    created = await api.ok(
        "authorization",
        "CreateAuthorization",
        {"userId": user_id, "projectId": project_id, "roleKeys": ["reader", "admin"]},
    )
    authorization_id = created["id"]
    assert created["creationDate"].endswith("Z")
    assert await roles(api, user_id, project_id) == ["admin", "reader"]

    listed = await api.ok(
        "authorization", "ListAuthorizations", {"filters": [{"projectId": {"id": project_id}}]}
    )
    assert listed["pagination"]["totalResult"] == "1"
    [item] = listed["authorizations"]
    assert item["id"] == authorization_id
    assert item["state"] == "STATE_ACTIVE"
    assert item["project"] == {"id": project_id, "name": "Shop", "organizationId": api.org_id}
    assert item["organization"] == {"id": api.org_id, "name": "donjon"}
    assert item["user"] == {
        "id": user_id,
        "preferredLoginName": "alice@donjon.localhost",
        "displayName": "Alice",
        "organizationId": api.org_id,
    }
    assert item["roles"] == [
        {"key": "admin", "displayName": "Admin", "group": "g"},
        {"key": "reader", "displayName": "Reader", "group": "g"},
    ]

    await api.ok(
        "authorization", "UpdateAuthorization", {"id": authorization_id, "roleKeys": ["writer"]}
    )
    assert await roles(api, user_id, project_id) == ["writer"]

    await api.ok("authorization", "DeactivateAuthorization", {"id": authorization_id})
    assert await roles(api, user_id, project_id) == []
    # Already inactive: success, nothing written.
    position = await api.runtime.store.max_position()
    await api.ok("authorization", "DeactivateAuthorization", {"id": authorization_id})
    assert await api.runtime.store.max_position() == position
    by_state = await api.ok(
        "authorization",
        "ListAuthorizations",
        {"filters": [{"state": {"state": "STATE_INACTIVE"}}, {"inUserIds": {"ids": [user_id]}}]},
    )
    assert [a["id"] for a in by_state["authorizations"]] == [authorization_id]
    await api.ok("authorization", "ActivateAuthorization", {"id": authorization_id})
    assert await roles(api, user_id, project_id) == ["writer"]

    deleted = await api.ok("authorization", "DeleteAuthorization", {"id": authorization_id})
    assert deleted["deletionDate"].endswith("Z")
    assert await roles(api, user_id, project_id) == []
    # Deleting again is success without a deletion date; the pair is free again.
    assert await api.ok("authorization", "DeleteAuthorization", {"id": authorization_id}) == {}
    await api.ok(
        "authorization", "CreateAuthorization", {"userId": user_id, "projectId": project_id}
    )


async def test_one_authorization_per_user_and_project(api: Api) -> None:
    project_id = await project_with_roles(api, "Once", "r")
    user_id, _ = await machine_user(api, "bob")
    body = {"userId": user_id, "projectId": project_id, "roleKeys": ["r"]}
    await api.ok("authorization", "CreateAuthorization", body)
    status, code, _ = await api.error("authorization", "CreateAuthorization", body)
    assert (status, code) == (409, "already_exists")


async def test_unknown_role_key_user_or_project_is_refused_and_writes_nothing(api: Api) -> None:
    project_id = await project_with_roles(api, "Strict", "reader")
    user_id, _ = await machine_user(api, "carol")
    before = await api.runtime.store.max_position()
    status, code, message = await api.error(
        "authorization",
        "CreateAuthorization",
        {"userId": user_id, "projectId": project_id, "roleKeys": ["reader", "owner"]},
    )
    assert (status, code) == (400, "invalid_argument")
    assert message.startswith("roleKeys.1:") and "owner" in message
    cases = [
        ({"projectId": project_id}, 400, "userId:"),
        ({"userId": user_id}, 400, "projectId:"),
        ({"userId": user_id, "projectId": "nope"}, 404, "projectId:"),
        ({"userId": "nope", "projectId": project_id}, 404, "userId:"),
        ({"userId": user_id, "projectId": project_id, "roleKeys": [""]}, 400, "roleKeys.0:"),
        ({"userId": user_id, "projectId": project_id, "roleKeys": "reader"}, 400, "roleKeys:"),
        (
            {"userId": user_id, "projectId": project_id, "organizationId": "other"},
            400,
            "organizationId:",
        ),
    ]
    for body, expected_status, prefix in cases:
        status, _, message = await api.error("authorization", "CreateAuthorization", body)
        assert status == expected_status, (body, message)
        assert message.startswith(prefix), (body, message)
    for method, body, prefix in (
        ("UpdateAuthorization", {"id": ""}, "id:"),
        ("ActivateAuthorization", {"id": ""}, "id:"),
        ("DeleteAuthorization", {"id": ""}, "id:"),
        ("ListAuthorizations", {"filters": [{}]}, "filters.0:"),
        ("ListAuthorizations", {"filters": [{"state": {"state": "X"}}]}, "filters.0.state.state:"),
        (
            "ListAuthorizations",
            {"filters": [{"roleKey": {"key": "a", "method": "LIKE"}}]},
            "filters.0.roleKey.method:",
        ),
        ("ListAuthorizations", {"sortingColumn": "NAME"}, "sortingColumn:"),
        ("ListAuthorizations", {"pagination": {"limit": 5000}}, "pagination.limit:"),
    ):
        status, code, message = await api.error("authorization", method, body)
        assert (status, code) == (400, "invalid_argument"), (method, message)
        assert message.startswith(prefix), (method, message)
    status, code, _ = await api.error("authorization", "UpdateAuthorization", {"id": "nope"})
    assert (status, code) == (404, "not_found")
    authorization_id = (
        await api.ok(
            "authorization", "CreateAuthorization", {"userId": user_id, "projectId": project_id}
        )
    )["id"]
    before = await api.runtime.store.max_position()
    status, code, message = await api.error(
        "authorization", "UpdateAuthorization", {"id": authorization_id, "roleKeys": ["ghost"]}
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("roleKeys.0:")
    assert await api.runtime.store.max_position() == before


async def test_removed_role_user_and_project_cascade_into_authorizations(api: Api) -> None:
    project_id = await project_with_roles(api, "Cascade", "a", "b")
    dave, _ = await machine_user(api, "dave")
    erin, _ = await machine_user(api, "erin")
    for user_id in (dave, erin):
        await api.ok(
            "authorization",
            "CreateAuthorization",
            {"userId": user_id, "projectId": project_id, "roleKeys": ["a", "b"]},
        )
    await api.ok("project", "RemoveProjectRole", {"projectId": project_id, "roleKey": "a"})
    assert await roles(api, dave, project_id) == ["b"]
    by_role = await api.ok(
        "authorization", "ListAuthorizations", {"filters": [{"roleKey": {"key": "a"}}]}
    )
    assert by_role["authorizations"] == []

    state = await users.UserState.load(api.runtime.store, api.instance_id, erin)
    await api.runtime.store.push(
        users.AggregateChanges(state.aggregate(), [users.UserRemoved(username="erin")]),
        creator="test",
    )
    listed = await api.ok(
        "authorization", "ListAuthorizations", {"filters": [{"projectId": {"id": project_id}}]}
    )
    assert [a["user"]["id"] for a in listed["authorizations"]] == [dave]

    await api.ok("project", "DeleteProject", {"projectId": project_id})
    assert await roles(api, dave, project_id) == []
    listed = await api.ok(
        "authorization", "ListAuthorizations", {"filters": [{"projectId": {"id": project_id}}]}
    )
    assert listed["pagination"]["totalResult"] == "0"


async def test_permissions_come_from_memberships_and_own_authorizations_are_visible(
    api: Api,
) -> None:
    project_id = await project_with_roles(api, "Guarded", "r")
    frank, frank_token = await machine_user(api, "frank")
    grace, _ = await machine_user(api, "grace")
    frank_api = api.as_token(frank_token)
    status, code, _ = await frank_api.error(
        "authorization", "CreateAuthorization", {"userId": grace, "projectId": project_id}
    )
    assert (status, code) == (403, "permission_denied")
    mine = (
        await api.ok(
            "authorization",
            "CreateAuthorization",
            {"userId": frank, "projectId": project_id, "roleKeys": ["r"]},
        )
    )["id"]
    graces = (
        await api.ok(
            "authorization", "CreateAuthorization", {"userId": grace, "projectId": project_id}
        )
    )["id"]
    # Without user.grant.read, frank sees his own authorization only.
    listed = await frank_api.ok("authorization", "ListAuthorizations")
    assert [a["id"] for a in listed["authorizations"]] == [mine]
    for method in ("UpdateAuthorization", "DeactivateAuthorization", "DeleteAuthorization"):
        status, code, _ = await frank_api.error("authorization", method, {"id": graces})
        assert (status, code) == (403, "permission_denied"), method

    # A PROJECT_OWNER of the project may manage its authorizations.
    await api.runtime.store.push(
        members.add_member(
            members.PROJECT, api.instance_id, project_id, api.org_id, frank, ["PROJECT_OWNER"]
        ),
        creator="test",
    )
    await frank_api.ok("authorization", "DeactivateAuthorization", {"id": graces})
    listed = await frank_api.ok("authorization", "ListAuthorizations")
    assert {a["id"] for a in listed["authorizations"]} == {mine, graces}
