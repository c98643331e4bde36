"""ProjectService over Connect JSON: projects, their settings and their roles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

ENFORCE = "PRIVATE_LABELING_SETTING_ENFORCE_PROJECT_RESOURCE_OWNER_POLICY"


async def machine_user(
    api: Api,
    *,
    memberships: list[tuple[str, str, str, list[str]]] = (),  # type: ignore[assignment]
) -> Api:
    """A new machine user of the admin's org with a PAT, and the client calling as it.

    `memberships` are (scope, resource id, resource owner, roles) to give it.
    """
    from donjon.core import ids
    from donjon.core.identity import members, secrets, users

    user_id, token = ids.new_id(), secrets.new_secret()
    username = f"sa-{user_id}"
    changes = [
        users.new_user(
            api.instance_id,
            user_id,
            api.org_id,
            [
                users.MachineAdded(username=username, name=username),
                users.PersonalAccessTokenAdded(token_id=ids.new_id(), digest=secrets.digest(token)),
            ],
            username,
        )
    ]
    for scope, resource_id, owner, roles in memberships:
        changes.append(
            members.add_member(scope, api.instance_id, resource_id, owner, user_id, roles)
        )
    await api.runtime.store.push(changes, creator=api.admin_id)
    return api.as_token(token)


async def new_project(api: Api, name: str = "Shop", **fields: Any) -> str:
    data = await api.ok("project", "CreateProject", {"name": name, **fields})
    return data["projectId"]


async def test_create_then_get_a_project_in_the_callers_org(api: Api) -> None:
    created = await api.ok(
        "project",
        "CreateProject",
        {
            "name": "Shop",
            "projectRoleAssertion": True,
            "authorizationRequired": True,
            "privateLabelingSetting": ENFORCE,
        },
    )
    assert created["creationDate"].endswith("Z")
    got = (await api.ok("project", "GetProject", {"projectId": created["projectId"]}))["project"]
    assert got == {
        "projectId": created["projectId"],
        "organizationId": api.org_id,
        "creationDate": got["creationDate"],
        "changeDate": got["changeDate"],
        "name": "Shop",
        "state": "PROJECT_STATE_ACTIVE",
        "projectRoleAssertion": True,
        "authorizationRequired": True,
        "projectAccessRequired": False,
        "privateLabelingSetting": ENFORCE,
    }


async def test_create_in_another_org_by_id_or_header_and_with_a_chosen_id(api: Api) -> None:
    other = (await api.ok("org", "AddOrganization", {"name": "Other"}))["organizationId"]
    by_field = await new_project(api, "A", organizationId=other, projectId="my-project")
    assert by_field == "my-project"
    by_header = (
        await api.ok("project", "CreateProject", {"name": "B"}, headers={"x-zitadel-orgid": other})
    )["projectId"]
    listed = await api.ok(
        "project",
        "ListProjects",
        {
            "filters": [{"organizationIdFilter": {"organizationId": other}}],
            "pagination": {"asc": True},
        },
    )
    assert [p["projectId"] for p in listed["projects"]] == [by_field, by_header]
    status, code, message = await api.error(
        "project", "CreateProject", {"name": "C", "projectId": "my-project"}
    )
    assert (status, code) == (409, "already_exists") and message.startswith("projectId:")


async def test_project_names_are_unique_per_org(api: Api) -> None:
    await new_project(api, "Twice")
    status, code, _ = await api.error("project", "CreateProject", {"name": "twice"})
    assert (status, code) == (409, "already_exists")
    other = (await api.ok("org", "AddOrganization", {"name": "Other"}))["organizationId"]
    await new_project(api, "Twice", organizationId=other)


async def test_list_projects_filters_sorts_and_pages(api: Api) -> None:
    ids = [await new_project(api, name) for name in ("beta", "alpha", "gamma")]
    by_name = await api.ok(
        "project",
        "ListProjects",
        {"sortingColumn": "PROJECT_FIELD_NAME_NAME", "pagination": {"asc": True, "limit": 2}},
    )
    assert [p["name"] for p in by_name["projects"]] == ["alpha", "beta"]
    assert by_name["pagination"] == {"totalResult": "3", "appliedLimit": "2"}
    second = await api.ok(
        "project",
        "ListProjects",
        {
            "sortingColumn": "PROJECT_FIELD_NAME_NAME",
            "pagination": {"asc": True, "limit": 2, "offset": "2"},
        },
    )
    assert [p["name"] for p in second["projects"]] == ["gamma"]
    contains = await api.ok(
        "project",
        "ListProjects",
        {
            "filters": [
                {
                    "projectNameFilter": {
                        "projectName": "MM",
                        "method": "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
                    }
                }
            ]
        },
    )
    assert [p["name"] for p in contains["projects"]] == ["gamma"]
    in_ids = await api.ok(
        "project", "ListProjects", {"filters": [{"inProjectIdsFilter": {"ids": ids[:2]}}]}
    )
    assert sorted(p["projectId"] for p in in_ids["projects"]) == sorted(ids[:2])
    granted = await api.ok(
        "project",
        "ListProjects",
        {"filters": [{"organizationIdFilter": {"organizationId": api.org_id, "type": "GRANTED"}}]},
    )
    assert granted["projects"] == []


async def test_update_project_changes_only_the_given_fields(api: Api) -> None:
    project_id = await new_project(api, "Old", projectAccessRequired=True)
    await api.ok(
        "project",
        "UpdateProject",
        {"projectId": project_id, "name": "New", "projectRoleAssertion": True},
    )
    got = (await api.ok("project", "GetProject", {"projectId": project_id}))["project"]
    assert (got["name"], got["projectRoleAssertion"], got["projectAccessRequired"]) == (
        "New",
        True,
        True,
    )
    # The old name is free again; the new one is taken.
    await new_project(api, "Old")
    assert (await api.error("project", "CreateProject", {"name": "New"}))[1] == "already_exists"
    # Nothing to change answers without writing.
    before = await api.runtime.store.max_position()
    await api.ok("project", "UpdateProject", {"projectId": project_id, "name": "New"})
    assert await api.runtime.store.max_position() == before


async def test_deactivate_and_activate_a_project(api: Api) -> None:
    project_id = await new_project(api)
    await api.ok("project", "DeactivateProject", {"projectId": project_id})
    assert (await api.error("project", "DeactivateProject", {"projectId": project_id}))[1] == (
        "failed_precondition"
    )
    got = (await api.ok("project", "GetProject", {"projectId": project_id}))["project"]
    assert got["state"] == "PROJECT_STATE_INACTIVE"
    await api.ok("project", "ActivateProject", {"projectId": project_id})
    assert (await api.error("project", "ActivateProject", {"projectId": project_id}))[1] == (
        "failed_precondition"
    )


async def test_delete_project_removes_its_roles_and_frees_its_name_and_keys(api: Api) -> None:
    project_id = await new_project(api, "Gone", projectId="gone")
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "admin", "displayName": "Admin"},
    )
    deleted = await api.ok("project", "DeleteProject", {"projectId": project_id})
    assert deleted["deletionDate"].endswith("Z")
    assert (await api.error("project", "GetProject", {"projectId": project_id}))[:2] == (
        404,
        "not_found",
    )
    assert (await api.error("project", "DeleteProject", {"projectId": project_id}))[:2] == (
        404,
        "not_found",
    )
    from sqlalchemy import select

    from donjon.core.identity.projects import project_roles_table

    async with api.runtime.db.read() as conn:
        rows = (await conn.execute(select(project_roles_table))).all()
    assert rows == []
    again = await new_project(api, "Gone")
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": again, "roleKey": "admin", "displayName": "Admin"},
    )


async def test_roles_add_update_list_remove(api: Api) -> None:
    project_id = await new_project(api)
    for key, name, group in [
        ("admin", "Administrator", "staff"),
        ("reader", "Reader", ""),
        ("editor", "Editor", "staff"),
    ]:
        added = await api.ok(
            "project",
            "AddProjectRole",
            {"projectId": project_id, "roleKey": key, "displayName": name, "group": group},
        )
        assert added["creationDate"].endswith("Z")
    await api.ok(
        "project",
        "UpdateProjectRole",
        {"projectId": project_id, "roleKey": "reader", "displayName": "Viewer", "group": "guests"},
    )
    listed = await api.ok(
        "project",
        "ListProjectRoles",
        {
            "projectId": project_id,
            "sortingColumn": "PROJECT_ROLE_FIELD_NAME_KEY",
            "pagination": {"asc": True},
        },
    )
    assert [(r["key"], r["displayName"], r["group"]) for r in listed["projectRoles"]] == [
        ("admin", "Administrator", "staff"),
        ("editor", "Editor", "staff"),
        ("reader", "Viewer", "guests"),
    ]
    assert listed["projectRoles"][0]["projectId"] == project_id
    assert listed["pagination"]["totalResult"] == "3"
    filtered = await api.ok(
        "project",
        "ListProjectRoles",
        {
            "projectId": project_id,
            "filters": [
                {
                    "displayNameFilter": {
                        "displayName": "ad",
                        "method": "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
                    }
                }
            ],
        },
    )
    assert [r["key"] for r in filtered["projectRoles"]] == ["admin"]
    removed = await api.ok(
        "project", "RemoveProjectRole", {"projectId": project_id, "roleKey": "editor"}
    )
    assert removed["removalDate"].endswith("Z")
    by_key = await api.ok(
        "project",
        "ListProjectRoles",
        {"projectId": project_id, "filters": [{"roleKeyFilter": {"key": "editor"}}]},
    )
    assert by_key["projectRoles"] == []
    # A removed key can be added again.
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "editor", "displayName": "Editor"},
    )


async def test_role_keys_are_unique_per_project(api: Api) -> None:
    first, second = await new_project(api, "One"), await new_project(api, "Two")
    body = {"projectId": first, "roleKey": "admin", "displayName": "Admin"}
    await api.ok("project", "AddProjectRole", body)
    status, code, _ = await api.error("project", "AddProjectRole", {**body, "roleKey": "ADMIN"})
    assert (status, code) == (409, "already_exists")
    await api.ok("project", "AddProjectRole", {**body, "projectId": second})


async def test_unknown_ids_are_not_found(api: Api) -> None:
    project_id = await new_project(api)
    for method in (
        "GetProject",
        "UpdateProject",
        "DeleteProject",
        "DeactivateProject",
        "ActivateProject",
        "ListProjectRoles",
    ):
        assert (await api.error("project", method, {"projectId": "nope"}))[:2] == (
            404,
            "not_found",
        ), method
    assert (
        await api.error(
            "project", "AddProjectRole", {"projectId": "nope", "roleKey": "a", "displayName": "A"}
        )
    )[1] == ("not_found")
    for method in ("UpdateProjectRole", "RemoveProjectRole"):
        assert (
            await api.error(
                "project", method, {"projectId": project_id, "roleKey": "nope", "displayName": "X"}
            )
        )[:2] == (404, "not_found"), method
    status, code, message = await api.error(
        "project", "CreateProject", {"name": "X", "organizationId": "nope"}
    )
    assert (status, code) == (404, "not_found") and message.startswith("organizationId:")


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    project_id = await new_project(api)
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "admin", "displayName": "Admin"},
    )
    before = await api.runtime.store.max_position()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("CreateProject", {"name": ""}, "name:"),
        ("CreateProject", {"name": " " * 3}, "name:"),
        ("CreateProject", {"name": "x" * 201}, "name:"),
        ("CreateProject", {"name": 5}, "name:"),
        ("CreateProject", {"name": "X", "projectRoleAssertion": "yes"}, "projectRoleAssertion:"),
        (
            "CreateProject",
            {"name": "X", "privateLabelingSetting": "NOPE"},
            "privateLabelingSetting:",
        ),
        ("CreateProject", {"name": "X", "projectId": "a b"}, "projectId:"),
        ("GetProject", {}, "projectId:"),
        ("UpdateProject", {"projectId": project_id, "name": ""}, "name:"),
        (
            "UpdateProject",
            {"projectId": project_id, "privateLabelingSetting": "X"},
            "privateLabelingSetting:",
        ),
        ("UpdateProject", {}, "projectId:"),
        ("DeleteProject", {}, "projectId:"),
        ("DeactivateProject", {}, "projectId:"),
        ("ActivateProject", {}, "projectId:"),
        ("ListProjects", {"pagination": {"limit": 1001}}, "pagination.limit:"),
        ("ListProjects", {"pagination": {"offset": "x"}}, "pagination.offset:"),
        ("ListProjects", {"sortingColumn": "NOPE"}, "sortingColumn:"),
        ("ListProjects", {"filters": [{}]}, "filters.0:"),
        (
            "ListProjects",
            {"filters": [{"projectNameFilter": {"projectName": "a", "method": "X"}}]},
            "filters.0.projectNameFilter.method:",
        ),
        (
            "ListProjects",
            {"filters": [{"organizationIdFilter": {"type": "X"}}]},
            "filters.0.organizationIdFilter.type:",
        ),
        (
            "AddProjectRole",
            {"projectId": project_id, "roleKey": "", "displayName": "A"},
            "roleKey:",
        ),
        (
            "AddProjectRole",
            {"projectId": project_id, "roleKey": "k", "displayName": ""},
            "displayName:",
        ),
        (
            "AddProjectRole",
            {"projectId": project_id, "roleKey": "k", "displayName": "K", "group": "g" * 201},
            "group:",
        ),
        ("AddProjectRole", {"roleKey": "k", "displayName": "K"}, "projectId:"),
        ("UpdateProjectRole", {"projectId": project_id, "roleKey": ""}, "roleKey:"),
        (
            "UpdateProjectRole",
            {"projectId": project_id, "roleKey": "admin", "displayName": ""},
            "displayName:",
        ),
        ("RemoveProjectRole", {"projectId": project_id}, "roleKey:"),
        ("ListProjectRoles", {}, "projectId:"),
        ("ListProjectRoles", {"projectId": project_id, "sortingColumn": "X"}, "sortingColumn:"),
        ("ListProjectRoles", {"projectId": project_id, "filters": [{}]}, "filters.0:"),
    ]
    for method, body, prefix in cases:
        status, code, message = await api.error("project", method, body)
        assert (status, code) == (400, "invalid_argument"), (method, body, message)
        assert message.startswith(prefix), (method, body, message)
    assert await api.runtime.store.max_position() == before


async def test_a_user_without_membership_is_denied_and_sees_nothing(api: Api) -> None:
    project_id = await new_project(api)
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "admin", "displayName": "Admin"},
    )
    nobody = await machine_user(api)
    before = await api.runtime.store.max_position()
    denied = [
        ("CreateProject", {"name": "Mine"}),
        ("GetProject", {"projectId": project_id}),
        ("UpdateProject", {"projectId": project_id, "name": "Mine"}),
        ("DeactivateProject", {"projectId": project_id}),
        ("DeleteProject", {"projectId": project_id}),
        ("AddProjectRole", {"projectId": project_id, "roleKey": "x", "displayName": "X"}),
        ("UpdateProjectRole", {"projectId": project_id, "roleKey": "admin", "displayName": "X"}),
        ("RemoveProjectRole", {"projectId": project_id, "roleKey": "admin"}),
        ("ListProjectRoles", {"projectId": project_id}),
    ]
    for method, body in denied:
        assert (await nobody.error("project", method, body))[:2] == (403, "permission_denied"), (
            method
        )
    assert (await nobody.ok("project", "ListProjects"))["projects"] == []
    assert await api.runtime.store.max_position() == before
    assert (await api.as_token(None).error("project", "ListProjects"))[:2] == (
        401,
        "unauthenticated",
    )


async def test_a_project_owner_manages_only_its_project(api: Api) -> None:
    mine, other = await new_project(api, "Mine"), await new_project(api, "Other")
    owner = await machine_user(api, memberships=[("project", mine, api.org_id, ["PROJECT_OWNER"])])
    await owner.ok("project", "UpdateProject", {"projectId": mine, "name": "Mine 2"})
    await owner.ok(
        "project", "AddProjectRole", {"projectId": mine, "roleKey": "a", "displayName": "A"}
    )
    listed = await owner.ok("project", "ListProjects")
    assert [p["projectId"] for p in listed["projects"]] == [mine]
    assert (await owner.error("project", "GetProject", {"projectId": other}))[1] == (
        "permission_denied"
    )
    assert (await owner.error("project", "CreateProject", {"name": "New"}))[1] == (
        "permission_denied"
    )


async def test_a_project_creator_becomes_owner_of_what_it_creates(api: Api) -> None:
    creator = await machine_user(
        api, memberships=[("org", api.org_id, api.org_id, ["ORG_PROJECT_CREATOR"])]
    )
    project_id = (await creator.ok("project", "CreateProject", {"name": "Own"}))["projectId"]
    await creator.ok(
        "project", "AddProjectRole", {"projectId": project_id, "roleKey": "a", "displayName": "A"}
    )
    assert [p["projectId"] for p in (await creator.ok("project", "ListProjects"))["projects"]] == [
        project_id
    ]


async def test_responses_parse_with_the_official_sdk_models(api: Api) -> None:
    from zitadel_client.models import (
        ProjectServiceGetProjectResponse,
        ProjectServiceListProjectRolesResponse,
        ProjectServiceListProjectsResponse,
    )

    project_id = await new_project(api, privateLabelingSetting=ENFORCE)
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project_id, "roleKey": "a", "displayName": "A", "group": "g"},
    )
    got = await api.ok("project", "GetProject", {"projectId": project_id})
    assert ProjectServiceGetProjectResponse.from_dict(got).project.project_id == project_id
    listed = await api.ok("project", "ListProjects")
    assert ProjectServiceListProjectsResponse.from_dict(listed).projects[0].name == "Shop"
    roles = await api.ok("project", "ListProjectRoles", {"projectId": project_id})
    assert ProjectServiceListProjectRolesResponse.from_dict(roles).project_roles[0].key == "a"
