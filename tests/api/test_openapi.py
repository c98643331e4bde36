"""The OpenAPI document at /openapi/management.json: every method, well-formed OpenAPI 3.1."""

from __future__ import annotations

import re
from typing import Any

import pytest

from donjon.core.api.openapi import document
from donjon.core.plugins import collect
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


async def fetch(api: Api) -> dict[str, Any]:
    r = await api.client.get("/openapi/management.json")  # no token needed
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def refs(node: Any) -> list[str]:
    """Every `$ref` anywhere in `node`."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The target of a local JSON pointer (RFC 6901), or KeyError."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


async def test_every_registered_method_is_an_operation(api: Api) -> None:
    doc = await fetch(api)
    services = collect(api.runtime.pm.hook.register_api_services, settings=api.runtime.settings)
    rpcs = [rpc for s in services for rpc in s.rpcs.values()]
    assert len(rpcs) >= 10
    for rpc in rpcs:
        operation = doc["paths"][rpc.path]["post"]
        assert operation["tags"] == [rpc.service]
        assert operation["summary"]
        assert "application/json" in operation["requestBody"]["content"]
    assert len(doc["paths"]) == len(rpcs)
    assert {t["name"] for t in doc["tags"]} == {rpc.service for rpc in rpcs}
    for path in (
        "/zitadel.instance.v2.InstanceService/GetInstance",
        "/zitadel.admin.v1.AdminService/ListEvents",
        "/zitadel.org.v2.OrganizationService/AddOrganization",
    ):
        assert path in doc["paths"]


async def test_the_document_is_openapi_3_1_in_shape(api: Api) -> None:
    doc = await fetch(api)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/") and set(item) == {"post"}, path
        operation = item["post"]
        operation_ids.append(operation["operationId"])
        assert "200" in operation["responses"] and "default" in operation["responses"]
        for status in operation["responses"]:
            assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), status
        for requirement in operation["security"]:
            assert set(requirement) <= set(doc["components"]["securitySchemes"])
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for name in doc["components"]["schemas"]:
        assert COMPONENT_NAME.match(name), name
    all_refs = refs(doc)
    assert all_refs
    for ref in all_refs:
        assert isinstance(resolve(doc, ref), dict), ref


async def test_responses_are_described_where_a_method_declares_them(api: Api) -> None:
    doc = await fetch(api)
    get_instance = doc["paths"]["/zitadel.instance.v2.InstanceService/GetInstance"]["post"]
    schema = resolve(
        doc, get_instance["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    )
    instance = resolve(doc, schema["properties"]["instance"]["anyOf"][0]["$ref"])
    assert {"id", "name", "state", "version", "customDomains"} <= set(instance["properties"])
    events = doc["paths"]["/zitadel.admin.v1.AdminService/ListEvents"]["post"]
    request = resolve(doc, events["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert {"sequence", "limit", "asc", "editorUserId", "eventTypes", "range"} <= set(
        request["properties"]
    )


async def test_errors_are_described_by_the_connect_error_schema(api: Api) -> None:
    doc = await fetch(api)
    error = doc["components"]["schemas"]["ConnectError"]
    assert error["required"] == ["code", "message"]
    assert {"invalid_argument", "unauthenticated", "not_found"} <= set(
        error["properties"]["code"]["enum"]
    )
    for item in doc["paths"].values():
        default = resolve(doc, item["post"]["responses"]["default"]["$ref"])
        assert default["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ConnectError"
        }


def test_a_method_without_a_declared_response_is_an_object_of_any_shape() -> None:
    from donjon.core.api.connect import Call, Message, Service

    class PingRequest(Message):
        text: str = ""

    service = Service("test.v1.PingService")

    @service.rpc("Ping", request=PingRequest, authenticated=False)
    async def ping(call: Call, req: PingRequest) -> dict[str, Any]:
        """Answer."""
        return {}

    doc = document([service])
    operation = doc["paths"]["/test.v1.PingService/Ping"]["post"]
    assert operation["operationId"] == "PingService_Ping"
    assert operation["summary"] == "Answer."
    assert operation["security"] == []
    assert "401" not in operation["responses"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "object"
    }
