"""OrganizationService over Connect JSON: create, list, rename, (de)activate, delete."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_first_instance_has_its_org_with_a_generated_primary_domain(api: Api) -> None:
    data = await api.ok("org", "ListOrganizations")
    assert data["details"]["totalResult"] == "1"
    [org] = data["result"]
    assert org == {
        "id": api.org_id,
        "details": org["details"],
        "state": "ORGANIZATION_STATE_ACTIVE",
        "name": "donjon",
        "primaryDomain": "donjon.localhost",
    }
    assert org["details"]["resourceOwner"] == api.org_id
    assert org["details"]["changeDate"].endswith("Z")


async def test_add_organization_then_find_it_by_name_and_domain(api: Api) -> None:
    created = await api.ok("org", "AddOrganization", {"name": "ACME Corp"})
    org_id = created["organizationId"]
    assert created["details"]["resourceOwner"] == org_id
    assert int(created["details"]["sequence"]) > 0
    by_name = await api.ok(
        "org",
        "ListOrganizations",
        {
            "queries": [
                {
                    "nameQuery": {
                        "name": "acme",
                        "method": "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE",
                    }
                }
            ]
        },
    )
    assert [o["id"] for o in by_name["result"]] == [org_id]
    by_domain = await api.ok(
        "org",
        "ListOrganizations",
        {"queries": [{"domainQuery": {"domain": "acme-corp.localhost"}}]},
    )
    assert [o["primaryDomain"] for o in by_domain["result"]] == ["acme-corp.localhost"]


async def test_org_names_are_unique_in_the_instance(api: Api) -> None:
    await api.ok("org", "AddOrganization", {"name": "Twice"})
    status, code, message = await api.error("org", "AddOrganization", {"name": "twice"})
    assert (status, code) == (409, "already_exists")
    assert "Org" in message


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    before = await api.runtime.store.max_position()
    assert await api.error("org", "AddOrganization", {"name": ""}) == (
        400,
        "invalid_argument",
        "name: must not be empty",
    )
    status, code, message = await api.error("org", "AddOrganization", {"name": 7})
    assert (status, code) == (400, "invalid_argument") and message.startswith("name:")
    status, code, message = await api.error(
        "org", "AddOrganization", {"name": "X", "admins": [{"userId": "nope"}]}
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("admins.0.userId:")
    assert await api.runtime.store.max_position() == before


async def test_rename_deactivate_activate_delete(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Temp"}))["organizationId"]
    await api.ok("org", "UpdateOrganization", {"organizationId": org_id, "name": "Temp 2"})
    await api.ok("org", "DeactivateOrganization", {"organizationId": org_id})
    assert (await api.error("org", "DeactivateOrganization", {"organizationId": org_id}))[1] == (
        "failed_precondition"
    )
    listed = await api.ok("org", "ListOrganizations", {"queries": [{"idQuery": {"id": org_id}}]})
    assert listed["result"][0]["state"] == "ORGANIZATION_STATE_INACTIVE"
    assert listed["result"][0]["name"] == "Temp 2"
    await api.ok("org", "ActivateOrganization", {"organizationId": org_id})
    await api.ok("org", "DeleteOrganization", {"organizationId": org_id})
    assert (await api.error("org", "DeleteOrganization", {"organizationId": org_id}))[:2] == (
        404,
        "not_found",
    )
    # The name is free again once the org is gone.
    await api.ok("org", "AddOrganization", {"name": "Temp 2"})


async def test_calls_without_a_valid_token_are_unauthenticated(api: Api) -> None:
    assert (await api.as_token(None).error("org", "ListOrganizations"))[:2] == (
        401,
        "unauthenticated",
    )
    assert (await api.as_token("not-a-token").error("org", "ListOrganizations"))[:2] == (
        401,
        "unauthenticated",
    )


async def test_deleting_an_org_removes_its_users_and_projects_and_frees_their_names(
    api: Api,
) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Doomed"}))["organizationId"]
    user_id = (
        await api.ok(
            "user",
            "AddHumanUser",
            {
                "username": "doomed-user",
                "organization": {"orgId": org_id},
                "profile": {"givenName": "D", "familyName": "U"},
                "email": {"email": "d@example.com", "isVerified": True},
            },
        )
    )["userId"]
    project_id = (
        await api.ok("project", "CreateProject", {"organizationId": org_id, "name": "Doomed"})
    )["projectId"]
    await api.ok("org", "DeleteOrganization", {"organizationId": org_id})
    assert (await api.error("user", "GetUserByID", {"userId": user_id}))[:2] == (404, "not_found")
    assert (await api.error("project", "GetProject", {"projectId": project_id}))[:2] == (
        404,
        "not_found",
    )
    other = (await api.ok("org", "AddOrganization", {"name": "Heir"}))["organizationId"]
    await api.ok(
        "user",
        "AddHumanUser",
        {
            "username": "doomed-user",
            "organization": {"orgId": other},
            "profile": {"givenName": "D", "familyName": "U"},
            "email": {"email": "d@example.com", "isVerified": True},
        },
    )
