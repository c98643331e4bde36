"""InstanceService over Connect JSON: the request's instance, its custom and trusted domains."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio


async def test_get_instance_describes_the_requests_instance(api: Api) -> None:
    data = await api.ok("instance", "GetInstance")
    instance = data["instance"]
    assert instance["id"] == api.instance_id
    assert instance["name"] == "donjon"
    assert instance["state"] == "STATE_RUNNING"
    assert instance["version"]
    assert instance["creationDate"].endswith("Z") and instance["changeDate"].endswith("Z")
    assert instance["customDomains"] == [
        {
            "instanceId": api.instance_id,
            "creationDate": instance["customDomains"][0]["creationDate"],
            "domain": "localhost",
            "primary": True,
            "generated": False,
        }
    ]
    # Naming itself is fine; naming another instance is system-level access.
    assert (await api.ok("instance", "GetInstance", {"instanceId": api.instance_id}))["instance"][
        "id"
    ] == api.instance_id
    status, code, message = await api.error("instance", "GetInstance", {"instanceId": "other"})
    assert (status, code) == (403, "permission_denied") and message.startswith("instanceId:")


async def test_update_instance_renames_it(api: Api) -> None:
    changed = await api.ok("instance", "UpdateInstance", {"instanceName": "  ACME IAM "})
    assert changed["changeDate"].endswith("Z")
    assert (await api.ok("instance", "GetInstance"))["instance"]["name"] == "ACME IAM"
    before = await api.runtime.store.max_position()
    assert await api.error("instance", "UpdateInstance", {"instanceName": " "}) == (
        400,
        "invalid_argument",
        "instanceName: must not be empty",
    )
    status, code, message = await api.error("instance", "UpdateInstance", {"instanceName": 3})
    assert (status, code) == (400, "invalid_argument") and message.startswith("instanceName:")
    assert await api.runtime.store.max_position() == before


async def test_list_instances_shows_only_the_callers_instance(api: Api) -> None:
    data = await api.ok("instance", "ListInstances")
    assert [i["id"] for i in data["instances"]] == [api.instance_id]
    assert data["pagination"] == {"totalResult": "1", "appliedLimit": "100"}
    by_id = await api.ok(
        "instance", "ListInstances", {"filters": [{"inIdsFilter": {"ids": ["someone-else"]}}]}
    )
    assert by_id["instances"] == [] and by_id["pagination"]["totalResult"] == "0"
    by_domain = await api.ok(
        "instance",
        "ListInstances",
        {"filters": [{"customDomainsFilter": {"domains": ["LOCALHOST"]}}]},
    )
    assert [i["id"] for i in by_domain["instances"]] == [api.instance_id]
    status, code, message = await api.error("instance", "ListInstances", {"filters": [{}]})
    assert (status, code) == (400, "invalid_argument") and message.startswith("filters.0:")


async def host_client(api: Api, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=api.client._transport,
        base_url=f"http://{host}",  # same in-process app
    )


async def whoami(api: Api, host: str) -> tuple[int, Any]:
    async with await host_client(api, host) as client:
        r = await client.post(
            "/zitadel.instance.v2.InstanceService/GetInstance",
            json={},
            headers={"authorization": f"Bearer {api.token}"},
        )
    return r.status_code, r.json()


async def test_a_custom_domain_routes_to_the_instance_until_it_is_removed(api: Api) -> None:
    assert (await whoami(api, "login.acme.test"))[0] == 404  # no instance there yet
    added = await api.ok("instance", "AddCustomDomain", {"customDomain": "Login.ACME.test"})
    assert added["creationDate"].endswith("Z")
    status, body = await whoami(api, "login.acme.test")
    assert (status, body["instance"]["id"]) == (200, api.instance_id)

    listed = await api.ok(
        "instance",
        "ListCustomDomains",
        {"sortingColumn": "DOMAIN_FIELD_NAME_DOMAIN", "pagination": {"asc": True}},
    )
    assert [(d["domain"], d["primary"]) for d in listed["domains"]] == [
        ("localhost", True),
        ("login.acme.test", False),
    ]
    assert listed["pagination"]["totalResult"] == "2"
    primary = await api.ok("instance", "ListCustomDomains", {"filters": [{"primaryFilter": True}]})
    assert [d["domain"] for d in primary["domains"]] == ["localhost"]
    by_name = await api.ok(
        "instance",
        "ListCustomDomains",
        {"filters": [{"domainFilter": {"domain": "acme", "method": "TEXT_QUERY_METHOD_CONTAINS"}}]},
    )
    assert [d["domain"] for d in by_name["domains"]] == ["login.acme.test"]

    removed = await api.ok("instance", "RemoveCustomDomain", {"customDomain": "login.acme.test"})
    assert removed["deletionDate"].endswith("Z")
    # This process pushed the removal: its host cache forgot the domain at once.
    assert (await whoami(api, "login.acme.test"))[0] == 404
    assert (await api.error("instance", "RemoveCustomDomain", {"customDomain": "login.acme.test"}))[
        :2
    ] == (404, "not_found")


async def test_the_primary_domain_cannot_be_removed_and_bad_domains_are_refused(api: Api) -> None:
    before = await api.runtime.store.max_position()
    status, code, message = await api.error(
        "instance", "RemoveCustomDomain", {"customDomain": "localhost"}
    )
    assert (status, code) == (400, "failed_precondition") and "primary" in message
    for bad in ("", "https://x.example", "a..b", "x.example:8080", "-x.example"):
        status, code, message = await api.error(
            "instance", "AddCustomDomain", {"customDomain": bad}
        )
        assert (status, code) == (400, "invalid_argument"), bad
        assert message.startswith("customDomain:"), message
    assert (await api.error("instance", "AddCustomDomain", {"customDomain": "LOCALHOST"}))[:2] == (
        409,
        "already_exists",
    )
    assert await api.runtime.store.max_position() == before


async def test_custom_domains_are_unique_across_instances(api: Api) -> None:
    from donjon.core.instance import add_instance

    await api.runtime.store.push(
        add_instance("other-instance", "other", ["taken.example"]), creator="test"
    )
    status, code, _ = await api.error(
        "instance", "AddCustomDomain", {"customDomain": "Taken.example"}
    )
    assert (status, code) == (409, "already_exists")
    domains = await api.ok("instance", "ListCustomDomains")
    assert [d["domain"] for d in domains["domains"]] == ["localhost"]


async def test_trusted_domains_are_added_listed_and_removed(api: Api) -> None:
    await api.ok("instance", "AddTrustedDomain", {"trustedDomain": "proxy.example"})
    await api.ok("instance", "AddTrustedDomain", {"trustedDomain": "login.example"})
    assert (await api.error("instance", "AddTrustedDomain", {"trustedDomain": "proxy.example"}))[
        :2
    ] == (409, "already_exists")
    listed = await api.ok(
        "instance",
        "ListTrustedDomains",
        {"sortingColumn": "TRUSTED_DOMAIN_FIELD_NAME_DOMAIN", "pagination": {"asc": True}},
    )
    assert [d["domain"] for d in listed["trustedDomain"]] == ["login.example", "proxy.example"]
    assert listed["trustedDomain"][0]["instanceId"] == api.instance_id
    assert listed["pagination"] == {"totalResult": "2", "appliedLimit": "100"}
    # Trusted domains do not route requests.
    assert (await whoami(api, "proxy.example"))[0] == 404
    await api.ok("instance", "RemoveTrustedDomain", {"trustedDomain": "proxy.example"})
    listed = await api.ok("instance", "ListTrustedDomains")
    assert [d["domain"] for d in listed["trustedDomain"]] == ["login.example"]
    assert (await api.error("instance", "RemoveTrustedDomain", {"trustedDomain": "proxy.example"}))[
        :2
    ] == (404, "not_found")
    status, code, message = await api.error(
        "instance", "AddTrustedDomain", {"trustedDomain": "not a domain"}
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("trustedDomain:")


async def test_an_org_owner_cannot_read_or_change_the_instance(api: Api) -> None:
    """iam.read and iam.write come from instance-level roles only."""
    _, owner = await machine_with_token(api, "org-owner", org_roles=["ORG_OWNER"])
    for method, body in [
        ("GetInstance", {}),
        ("ListInstances", {}),
        ("UpdateInstance", {"instanceName": "mine"}),
        ("ListCustomDomains", {}),
        ("AddCustomDomain", {"customDomain": "mine.example"}),
        ("AddTrustedDomain", {"trustedDomain": "mine.example"}),
    ]:
        assert (await owner.error("instance", method, body))[:2] == (403, "permission_denied")


async def test_an_instance_viewer_reads_but_does_not_change(api: Api) -> None:
    _, viewer = await machine_with_token(api, "viewer", instance_roles=["IAM_OWNER_VIEWER"])
    assert (await viewer.ok("instance", "GetInstance"))["instance"]["id"] == api.instance_id
    assert (await viewer.ok("instance", "ListTrustedDomains"))["trustedDomain"] == []
    assert (await viewer.error("instance", "UpdateInstance", {"instanceName": "x"}))[:2] == (
        403,
        "permission_denied",
    )
