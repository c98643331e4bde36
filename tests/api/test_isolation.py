"""Tenant isolation on every route of the management API.

Two sweeps call every registered method with a body that names another
tenant's resources in every id field a method may read:

- the owner of one org (ORG_OWNER of `outside` only) against the resources of
  another org of the same instance: nothing of theirs is read (no response
  holds their marker names) and nothing of theirs is changed (no event the
  caller pushed belongs to them);
- the administrator of another instance: its token is unknown on this
  instance's host (401 on every method), and on its own host the ids of this
  instance find nothing.

No method may answer 5xx to any of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from donjon.core.eventstore.query import EventQuery
from donjon.core.identity import members
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

MARKER = "zzsecretzz"


def all_rpcs(api: Api) -> list[Any]:
    from donjon.core.plugins import collect

    services = collect(api.runtime.pm.hook.register_api_services, settings=api.runtime.settings)
    return [rpc for s in services for rpc in s.rpcs.values()]


async def victim_resources(api: Api) -> dict[str, str]:
    """An org with a person, a project with a role, an OIDC app and an authorization."""
    org = (await api.ok("org", "AddOrganization", {"name": f"{MARKER} org"}))["organizationId"]
    user = (
        await api.ok(
            "user",
            "AddHumanUser",
            {
                "username": f"{MARKER}-alice",
                "organization": {"orgId": org},
                "profile": {"givenName": MARKER, "familyName": MARKER},
                "email": {"email": f"{MARKER}@example.com", "isVerified": True},
            },
        )
    )["userId"]
    await api.ok(
        "user",
        "SetUserMetadata",
        {"userId": user, "metadata": [{"key": MARKER, "value": "c2VjcmV0"}]},
    )
    project = (
        await api.ok("project", "CreateProject", {"organizationId": org, "name": f"{MARKER} p"})
    )["projectId"]
    await api.ok(
        "project",
        "AddProjectRole",
        {"projectId": project, "roleKey": "reader", "displayName": MARKER},
    )
    app = (
        await api.ok(
            "application",
            "CreateApplication",
            {
                "projectId": project,
                "name": f"{MARKER} app",
                "oidcConfiguration": {
                    "redirectUris": ["https://victim.example/cb"],
                    "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                    "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                    "applicationType": "OIDC_APP_TYPE_WEB",
                    "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
                },
            },
        )
    )["applicationId"]
    authorization = (
        await api.ok(
            "authorization",
            "CreateAuthorization",
            {"userId": user, "projectId": project, "organizationId": org, "roleKeys": ["reader"]},
        )
    )["id"]
    return {
        "org": org,
        "user": user,
        "project": project,
        "app": app,
        "authorization": authorization,
    }


def probe(ids: dict[str, str]) -> dict[str, Any]:
    """A body naming the victim's resources in every id field methods take."""
    return {
        "userId": ids["user"],
        "organizationId": ids["org"],
        "orgId": ids["org"],
        "projectId": ids["project"],
        "applicationId": ids["app"],
        "appId": ids["app"],
        "id": ids["authorization"],
        "authorizationId": ids["authorization"],
        "resourceOwner": ids["org"],
        "aggregateId": ids["user"],
        "organization": {"orgId": ids["org"]},
        "ctx": {"orgId": ids["org"]},
        "resource": {"organizationId": ids["org"], "projectId": ids["project"]},
        "roleKey": "reader",
        "roleKeys": ["reader"],
        "keys": [MARKER],
        "key": MARKER,
        "name": "probe",
        "username": "probe-user",
        "profile": {"givenName": "p", "familyName": "p"},
        "email": {"email": "probe@example.com"},
        "newPassword": {"password": "Probe-Passw0rd!"},
        "domain": "probe.example",
    }


async def outsider(api: Api, tmp_path: Path) -> Api:
    """The owner of another org of the same instance, with a PAT."""
    from donjon.core import ids
    from donjon.core.identity import secrets, users

    org = (await api.ok("org", "AddOrganization", {"name": "outside"}))["organizationId"]
    user_id, token = ids.new_id(), secrets.new_secret()
    await api.runtime.store.push(
        [
            users.new_user(
                api.instance_id,
                user_id,
                org,
                [
                    users.MachineAdded(username="outside-sa", name="outside"),
                    users.PersonalAccessTokenAdded(
                        token_id=ids.new_id(), digest=secrets.digest(token)
                    ),
                ],
                "outside-sa",
            ),
            members.add_member(members.ORG, api.instance_id, org, org, user_id, ["ORG_OWNER"]),
        ],
        creator="test",
    )
    caller = api.as_token(token)
    caller.admin_id, caller.org_id = user_id, org
    return caller


async def test_an_org_owner_cannot_read_or_change_another_orgs_resources_on_any_route(
    api: Api, tmp_path: Path
) -> None:
    victim = await victim_resources(api)
    other = await outsider(api, tmp_path)
    body = probe(victim)
    leaks, errors = [], []
    for rpc in all_rpcs(api):
        status, data = await other.call(rpc.service, rpc.method, body)
        if status >= 500:
            errors.append((rpc.path, status, data))
        elif MARKER in str(data):
            leaks.append((rpc.path, data))
    assert errors == []
    assert leaks == []
    pushed = await api.runtime.store.query(
        EventQuery(instance_ids=(api.instance_id,), creators=(other.admin_id,))
    )
    touched = [
        (e.type, e.aggregate_id)
        for e in pushed
        if e.owner == victim["org"] or e.aggregate_id in victim.values()
    ]
    assert touched == []


async def test_a_token_of_another_instance_is_unknown_here_on_every_route(
    api: Api, tmp_path: Path
) -> None:
    from donjon.core.instances_admin import HumanAdmin, MachineAdmin, NewInstance, create_instance

    victim = await victim_resources(api)
    created = await create_instance(
        api.runtime,
        NewInstance(
            name="tenant b",
            domains=("b.example",),
            org_name="b",
            human=HumanAdmin(username="b-admin", password="Password1!"),
            machine=MachineAdmin(username="b-sa", pat_path=tmp_path / "b.pat"),
        ),
    )
    b_token = (tmp_path / "b.pat").read_text().strip()
    b_host = httpx.AsyncClient(transport=api.client._transport, base_url="http://b.example")
    b_admin = Api(
        b_host, b_token, api.runtime, created.instance_id, created.org_id, created.machine_admin_id
    )
    body = probe(victim)
    problems = []
    async with b_host:
        for rpc in all_rpcs(api):
            # B's token on this instance's host: unknown.
            status, data = await api.as_token(b_token).call(rpc.service, rpc.method, body)
            if status != 401:
                problems.append(("b token on a", rpc.path, status, data))
            # This instance's token on B's host: unknown too.
            status, data = await b_admin.as_token(api.token).call(rpc.service, rpc.method, body)
            if status != 401:
                problems.append(("a token on b", rpc.path, status, data))
            # B's own administrator naming A's resources on B's host: nothing found.
            status, data = await b_admin.call(rpc.service, rpc.method, body)
            if status >= 500 or MARKER in str(data):
                problems.append(("b admin", rpc.path, status, data))
    assert problems == []
    pushed = await api.runtime.store.query(
        EventQuery(instance_ids=(api.instance_id,), creators=(created.machine_admin_id,))
    )
    assert pushed == []
