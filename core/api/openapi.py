"""The OpenAPI document of the management API, built from the registered services."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from donjon.core.api.connect import Service

PATH = "/openapi/management.json"


def document(services: list[Service]) -> dict[str, Any]:
    """An OpenAPI 3.1 document: one POST operation per method, request schemas included."""
    rpcs = [rpc for s in services for rpc in s.rpcs.values()]
    schemas, components = msgspec.json.schema_components(
        [rpc.request for rpc in rpcs], ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {}
    for rpc, schema in zip(rpcs, schemas, strict=True):
        paths[rpc.path] = {
            "post": {
                "operationId": f"{rpc.service.rsplit('.', 1)[-1]}_{rpc.method}",
                "tags": [rpc.service],
                "summary": rpc.summary,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                },
                "responses": {
                    "200": {
                        "description": "the response message (protobuf JSON)",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "default": {
                        "description": "a Connect error",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ConnectError"}
                            }
                        },
                    },
                },
                **({"security": [{"bearer": []}]} if rpc.authenticated else {}),
            }
        }
    components["ConnectError"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "donjon management API (ZITADEL v2 Connect JSON)", "version": "2"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_route(services: list[Service]) -> HTTPRouteHandler:
    body = msgspec.json.encode(document(services))

    @get(PATH, sync_to_thread=False, include_in_schema=False)
    def openapi() -> Response[bytes]:
        return Response(body, media_type="application/json")

    return openapi
