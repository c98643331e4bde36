"""The OpenAPI document of the management API, built from the registered services.

One `POST` operation per method (`operationId` `<Service>_<Method>`, tagged
with the service's full name), whose request schema is the method's request
`Message` and whose 200 schema is its declared `response` type (an object
of any shape when it declares none). Every operation may also answer a
Connect error (`ConnectError`: code, message, details). Schemas are JSON
Schema 2020-12, as OpenAPI 3.1 uses; types with the same name in two modules
get their module path in the component name.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from donjon.core.api.connect import HTTP_STATUS, Rpc, Service

PATH = "/openapi/management.json"
REF = "#/components/schemas/{name}"

CONNECT_ERROR: dict[str, Any] = {
    "type": "object",
    "description": "A failed call (connectrpc.com/docs/protocol#error-end-stream).",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "enum": sorted(HTTP_STATUS)},
        "message": {
            "type": "string",
            "description": "What to fix; about a field, it starts with the field's JSON path.",
        },
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "value": {"type": "string", "contentEncoding": "base64"},
                    "debug": {},
                },
            },
        },
    },
}


def _version() -> str:
    try:
        return version("donjon")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


def _operation(rpc: Rpc, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    error = {"$ref": "#/components/responses/ConnectError"}
    responses: dict[str, Any] = {
        "200": {
            "description": f"{rpc.method} succeeded (protobuf JSON)",
            "content": {"application/json": {"schema": response}},
        },
        "400": error,
        "403": error,
        "404": error,
        "default": error,
    }
    if rpc.authenticated:
        responses["401"] = error
    operation: dict[str, Any] = {
        "operationId": f"{rpc.service.rsplit('.', 1)[-1]}_{rpc.method}",
        "tags": [rpc.service],
        "summary": rpc.summary or rpc.method,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request}},
        },
        "responses": responses,
    }
    operation["security"] = [{"bearer": []}] if rpc.authenticated else []
    return operation


def document(services: list[Service]) -> dict[str, Any]:
    """An OpenAPI 3.1 document: one POST operation per method, request and response schemas."""
    rpcs = [rpc for s in services for rpc in s.rpcs.values()]
    types: list[Any] = [rpc.request for rpc in rpcs]
    types += [rpc.response for rpc in rpcs if rpc.response is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    requests = iter(schemas[: len(rpcs)])
    responses = iter(schemas[len(rpcs) :])
    paths: dict[str, Any] = {}
    for rpc in rpcs:
        request = next(requests)
        response = next(responses) if rpc.response is not None else {"type": "object"}
        paths[rpc.path] = {"post": _operation(rpc, request, response)}
    components["ConnectError"] = CONNECT_ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "donjon management API (ZITADEL Connect JSON)",
            "version": _version(),
            "description": "Every method is POST /<service>/<method> with a JSON body;"
            " see docs/management-api.md.",
        },
        "tags": [{"name": name} for name in dict.fromkeys(s.name for s in services if s.rpcs)],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "ConnectError": {
                    "description": "a Connect error",
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(name="ConnectError")}}
                    },
                }
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a personal access token or an OAuth access token",
                }
            },
        },
    }


def openapi_route(services: list[Service]) -> HTTPRouteHandler:
    body = msgspec.json.encode(document(services))

    @get(PATH, sync_to_thread=False, include_in_schema=False)
    def openapi() -> Response[bytes]:
        return Response(body, media_type="application/json")

    return openapi
