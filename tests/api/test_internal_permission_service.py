"""InternalPermissionService over Connect JSON: administrators of the instance, orgs, projects."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.api.test_authorization_service import machine_user

pytestmark = pytest.mark.anyio

INSTANCE = {"instance": True}


async def _administrators(api: Api, *filters: dict) -> list[dict]:
    data = await api.ok("permission", "ListAdministrators", {"filters": list(filters)})
    assert data["pagination"]["totalResult"] == str(len(data["administrators"]))
    return data["administrators"]


async def test_first_instance_admins_are_listed_with_their_resources(api: Api) -> None:
    admins = await _administrators(api, {"inUserIdsFilter": {"ids": [api.admin_id]}})
    by_kind = {("instance" if a.get("instance") else "organization"): a for a in admins}
    assert by_kind["instance"]["roles"] == ["IAM_OWNER"]
    assert by_kind["organization"]["organization"] == {"id": api.org_id, "name": "donjon"}
    assert by_kind["organization"]["user"]["preferredLoginName"] == "admin-sa@donjon.localhost"


async def test_create_update_delete_an_org_and_a_project_administrator(api: Api) -> None:
    user_id, _ = await machine_user(api, "helen")
    org = {"organizationId": api.org_id}
    created = await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": user_id, "resource": org, "roles": ["ORG_USER_MANAGER"]},
    )
    assert created["creationDate"].endswith("Z")
    status, code, _ = await api.error(
        "permission",
        "CreateAdministrator",
        {"userId": user_id, "resource": org, "roles": ["ORG_OWNER"]},
    )
    assert (status, code) == (409, "already_exists")
    await api.ok(
        "permission",
        "UpdateAdministrator",
        {"userId": user_id, "resource": org, "roles": ["ORG_OWNER", "ORG_OWNER_VIEWER"]},
    )
    [admin] = await _administrators(api, {"inUserIdsFilter": {"ids": [user_id]}}, {"resource": org})
    assert admin["roles"] == ["ORG_OWNER", "ORG_OWNER_VIEWER"]
    assert admin["user"]["displayName"] == "Helen"
    by_role = await _administrators(api, {"role": {"roleKey": "ORG_OWNER_VIEWER"}})
    assert [a["user"]["id"] for a in by_role] == [user_id]

    project_id = (await api.ok("project", "CreateProject", {"name": "Admins"}))["projectId"]
    project = {"projectId": project_id}
    await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": user_id, "resource": project, "roles": ["PROJECT_OWNER"]},
    )
    [admin] = await _administrators(api, {"resource": project})
    assert admin["project"] == {"id": project_id, "name": "Admins", "organizationId": api.org_id}
    # and / or / not compose.
    both = await _administrators(
        api,
        {
            "and": {
                "queries": [
                    {"inUserIdsFilter": {"ids": [user_id]}},
                    {"or": {"queries": [{"resource": org}, {"resource": project}]}},
                    {"not": {"query": {"role": {"roleKey": "ORG_OWNER"}}}},
                ]
            }
        },
    )
    assert [("project" in a) for a in both] == [True]

    deleted = await api.ok(
        "permission", "DeleteAdministrator", {"userId": user_id, "resource": org}
    )
    assert deleted["deletionDate"].endswith("Z")
    assert (
        await api.ok("permission", "DeleteAdministrator", {"userId": user_id, "resource": org})
        == {}
    )
    assert (
        await _administrators(api, {"inUserIdsFilter": {"ids": [user_id]}}, {"resource": org}) == []
    )
    status, code, _ = await api.error(
        "permission",
        "UpdateAdministrator",
        {"userId": user_id, "resource": org, "roles": ["ORG_OWNER"]},
    )
    assert (status, code) == (404, "not_found")


async def test_the_last_iam_owner_stays(api: Api) -> None:
    # The first instance has two IAM_OWNERs: the human admin and the service account.
    others = [
        a["user"]["id"]
        for a in await _administrators(api, {"resource": INSTANCE})
        if a["user"]["id"] != api.admin_id
    ]
    for other in others:
        await api.ok("permission", "DeleteAdministrator", {"userId": other, "resource": INSTANCE})
    before = await api.runtime.store.max_position()
    status, code, message = await api.error(
        "permission", "DeleteAdministrator", {"userId": api.admin_id, "resource": INSTANCE}
    )
    assert (status, code) == (400, "failed_precondition") and "IAM_OWNER" in message
    status, code, _ = await api.error(
        "permission",
        "UpdateAdministrator",
        {"userId": api.admin_id, "resource": INSTANCE, "roles": ["IAM_OWNER_VIEWER"]},
    )
    assert (status, code) == (400, "failed_precondition")
    assert await api.runtime.store.max_position() == before
    # Once someone else is IAM_OWNER, the role may move.
    successor, _ = await machine_user(api, "successor")
    await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": successor, "resource": INSTANCE, "roles": ["IAM_OWNER"]},
    )
    await api.ok(
        "permission",
        "UpdateAdministrator",
        {"userId": api.admin_id, "resource": INSTANCE, "roles": ["IAM_OWNER_VIEWER"]},
    )


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    user_id, _ = await machine_user(api, "ivan")
    before = await api.runtime.store.max_position()
    org = {"organizationId": api.org_id}
    cases = [
        ("CreateAdministrator", {"resource": org, "roles": ["ORG_OWNER"]}, 400, "userId:"),
        ("CreateAdministrator", {"userId": user_id, "roles": ["ORG_OWNER"]}, 400, "resource:"),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": {**org, "instance": True}, "roles": ["IAM_OWNER"]},
            400,
            "resource:",
        ),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": org, "roles": ["IAM_OWNER"]},
            400,
            "roles:",
        ),
        ("CreateAdministrator", {"userId": user_id, "resource": org, "roles": []}, 400, "roles:"),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": org, "roles": "ORG_OWNER"},
            400,
            "roles:",
        ),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": {"projectGrant": {"projectId": "p"}}, "roles": ["X"]},
            400,
            "resource.projectGrant:",
        ),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": {"organizationId": "nope"}, "roles": ["ORG_OWNER"]},
            404,
            "resource.organizationId:",
        ),
        (
            "CreateAdministrator",
            {"userId": user_id, "resource": {"projectId": "nope"}, "roles": ["PROJECT_OWNER"]},
            404,
            "resource.projectId:",
        ),
        (
            "CreateAdministrator",
            {"userId": "nope", "resource": org, "roles": ["ORG_OWNER"]},
            404,
            "userId:",
        ),
        (
            "UpdateAdministrator",
            {"userId": user_id, "resource": org, "roles": ["NOPE"]},
            400,
            "roles:",
        ),
        ("DeleteAdministrator", {"resource": org}, 400, "userId:"),
        ("ListAdministrators", {"filters": [{}]}, 400, "filters.0:"),
        ("ListAdministrators", {"filters": [{"not": {}}]}, 400, "filters.0.not.query:"),
        (
            "ListAdministrators",
            {"filters": [{"and": {"queries": [{"creationDate": {"timestamp": "yesterday"}}]}}]},
            400,
            "filters.0.and.queries.0.creationDate.timestamp:",
        ),
        (
            "ListAdministrators",
            {"filters": [{"userDisplayName": {"displayName": "x", "method": "SOUNDS_LIKE"}}]},
            400,
            "filters.0.userDisplayName.method:",
        ),
        ("ListAdministrators", {"sortingColumn": "NAME"}, 400, "sortingColumn:"),
    ]
    for method, body, expected, prefix in cases:
        status, _, message = await api.error("permission", method, body)
        assert status == expected, (body, message)
        assert message.startswith(prefix), (body, message)
    assert await api.runtime.store.max_position() == before


async def test_users_without_membership_see_only_their_own_roles_and_change_nothing(
    api: Api,
) -> None:
    user_id, token = await machine_user(api, "judy")
    judy = api.as_token(token)
    for resource, roles in (
        (INSTANCE, ["IAM_OWNER"]),
        ({"organizationId": api.org_id}, ["ORG_OWNER"]),
    ):
        status, code, _ = await judy.error(
            "permission",
            "CreateAdministrator",
            {"userId": user_id, "resource": resource, "roles": roles},
        )
        assert (status, code) == (403, "permission_denied")
    status, code, _ = await judy.error(
        "permission", "DeleteAdministrator", {"userId": api.admin_id, "resource": INSTANCE}
    )
    assert (status, code) == (403, "permission_denied")
    assert (await judy.ok("permission", "ListAdministrators"))["administrators"] == []

    project_id = (await api.ok("project", "CreateProject", {"name": "Judy's"}))["projectId"]
    await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": user_id, "resource": {"projectId": project_id}, "roles": ["PROJECT_OWNER"]},
    )
    # Judy sees her project's administrators (herself) and may manage them, nothing else.
    listed = await judy.ok("permission", "ListAdministrators")
    assert [a["project"]["id"] for a in listed["administrators"]] == [project_id]
    await judy.ok(
        "permission",
        "UpdateAdministrator",
        {
            "userId": user_id,
            "resource": {"projectId": project_id},
            "roles": ["PROJECT_OWNER", "PROJECT_OWNER_VIEWER"],
        },
    )
    status, code, _ = await judy.error(
        "permission",
        "CreateAdministrator",
        {"userId": user_id, "resource": {"organizationId": api.org_id}, "roles": ["ORG_OWNER"]},
    )
    assert (status, code) == (403, "permission_denied")
