"""The Connect JSON transport, whatever the method: routing, bodies, types, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from donjon.core.instances_admin import HumanAdmin, MachineAdmin, NewInstance, create_instance
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio

LIST_ORGS = "/zitadel.org.v2.OrganizationService/ListOrganizations"


async def test_an_unknown_method_or_service_is_404(api: Api) -> None:
    h = {"authorization": f"Bearer {api.token}"}
    for path in (
        "/zitadel.org.v2.OrganizationService/NoSuchMethod",
        "/zitadel.nothing.v2.NothingService/ListNothing",
    ):
        r = await api.client.post(path, json={}, headers=h)
        assert r.status_code == 404, path
        assert r.json()["code"] == "unimplemented"
        assert path.lstrip("/") in r.json()["message"]


async def test_a_method_answers_post_only(api: Api) -> None:
    r = await api.client.get(LIST_ORGS, headers={"authorization": f"Bearer {api.token}"})
    assert r.status_code == 405
    assert "POST" in r.headers.get("allow", "")
    assert r.json()["code"] == "unimplemented"


async def test_a_body_that_is_not_json_is_invalid_argument(api: Api) -> None:
    h = {"authorization": f"Bearer {api.token}", "content-type": "application/json"}
    r = await api.client.post(LIST_ORGS, content=b"{not json", headers=h)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_argument"
    assert r.json()["message"].startswith("the body is not valid JSON")
    r = await api.client.post(LIST_ORGS, content=b"[1, 2]", headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    plain = {**h, "content-type": "text/plain"}
    r = await api.client.post(LIST_ORGS, content=b"{}", headers=plain)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert "application/json" in r.json()["message"]
    deep = b"[" * 100_000 + b"]" * 100_000
    r = await api.client.post(LIST_ORGS, content=deep, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


async def test_an_empty_body_is_the_empty_message(api: Api) -> None:
    h = {"authorization": f"Bearer {api.token}", "content-type": "application/json"}
    r = await api.client.post(LIST_ORGS, content=b"", headers=h)
    assert r.status_code == 200 and r.json()["details"]["totalResult"] == "1"


async def test_a_body_over_one_mebibyte_is_resource_exhausted(api: Api) -> None:
    body = b'{"queries": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    h = {"authorization": f"Bearer {api.token}", "content-type": "application/json"}
    r = await api.client.post(LIST_ORGS, content=body, headers=h)
    assert (r.status_code, r.json()["code"]) == (429, "resource_exhausted")
    assert r.json()["message"] == "the request body is over 1 MiB"


async def test_a_wrong_type_names_the_nested_field(api: Api) -> None:
    cases = [
        ({"queries": [{"nameQuery": {"name": 5}}]}, "queries.0.nameQuery.name: "),
        ({"queries": [{}, {"idQuery": {"id": ["x"]}}]}, "queries.1.idQuery.id: "),
        ({"query": {"limit": "many"}}, "query.limit: "),
        ({"queries": {"nameQuery": {}}}, "queries: "),
    ]
    for body, prefix in cases:
        status, code, message = await api.error("org", "ListOrganizations", body)
        assert (status, code) == (400, "invalid_argument"), body
        assert message.startswith(prefix), (body, message)
    # Fields the server does not know are ignored, as protobuf JSON clients expect.
    assert (await api.ok("org", "ListOrganizations", {"somethingNew": {"x": 1}}))["result"]


async def test_a_call_without_a_valid_token_is_401(api: Api) -> None:
    for token in (None, "", "not-a-token"):
        status, code, _ = await api.as_token(token).error("org", "ListOrganizations")
        assert (status, code) == (401, "unauthenticated"), token
    r = await api.client.post(LIST_ORGS, json={}, headers={"authorization": f"Basic {api.token}"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")


async def test_an_expired_token_is_401_and_a_future_expiry_is_fine(api: Api) -> None:
    now = datetime.now(UTC)
    _, expired = await machine_with_token(
        api, "expired", instance_roles=["IAM_OWNER"], expiration=now - timedelta(minutes=1)
    )
    _, valid = await machine_with_token(
        api, "valid", instance_roles=["IAM_OWNER"], expiration=now + timedelta(days=1)
    )
    assert (await expired.error("org", "ListOrganizations"))[:2] == (401, "unauthenticated")
    assert (await valid.ok("org", "ListOrganizations"))["result"]


async def test_a_token_of_another_instance_is_401(api: Api, tmp_path: Path) -> None:
    created = await create_instance(
        api.runtime,
        NewInstance(
            name="other",
            domains=("other.example",),
            org_name="Other",
            human=HumanAdmin("other-admin", "Password1!"),
            machine=MachineAdmin("other-sa", pat_path=tmp_path / "other.pat"),
        ),
    )
    other_token = (tmp_path / "other.pat").read_text().strip()
    transport = api.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://other.example") as other:
        own = await other.post(
            LIST_ORGS, json={}, headers={"authorization": f"Bearer {other_token}"}
        )
        foreign = await other.post(
            LIST_ORGS, json={}, headers={"authorization": f"Bearer {api.token}"}
        )
    assert own.status_code == 200
    assert [o["id"] for o in own.json()["result"]] == [created.org_id]
    assert (foreign.status_code, foreign.json()["code"]) == (401, "unauthenticated")
    assert (await api.as_token(other_token).error("org", "ListOrganizations"))[:2] == (
        401,
        "unauthenticated",
    )


async def test_errors_are_connect_json(api: Api) -> None:
    r = await api.client.post(
        "/zitadel.org.v2.OrganizationService/UpdateOrganization",
        json={"organizationId": "nope", "name": "x"},
        headers={"authorization": f"Bearer {api.token}"},
    )
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"code", "message"} and r.json()["code"] == "not_found"
