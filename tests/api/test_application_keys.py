"""ApplicationService application keys: CreateApplicationKey (generated or uploaded),
GetApplicationKey, ListApplicationKeys, DeleteApplicationKey, and what they refuse."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.conftest import Api
from tests.api.test_application_service import WEB, create
from tests.api.test_project_service import machine_user, new_project

pytestmark = pytest.mark.anyio

API_JWT = {"apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"}}
OIDC_JWT = {"oidcConfiguration": {**WEB, "authMethodType": "OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def key_app(api: Api, project_id: str, config: dict[str, Any] = API_JWT) -> dict[str, Any]:
    return await create(api, project_id, "jwt-app", **config)


async def test_a_generated_key_is_returned_once_as_zitadels_key_file(api: Api) -> None:
    project_id = await new_project(api)
    app = await key_app(api, project_id)
    client_id = app["apiConfiguration"]["clientId"]
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = await api.ok(
        "application",
        "CreateApplicationKey",
        {
            "applicationId": app["applicationId"],
            "projectId": project_id,
            "expirationDate": expires.isoformat().replace("+00:00", "Z"),
        },
    )
    key_file = json.loads(base64.b64decode(created["keyDetails"]))
    assert key_file["type"] == "application"
    assert key_file["keyId"] == created["keyId"]
    assert key_file["appId"] == app["applicationId"]
    assert key_file["clientId"] == client_id
    private = serialization.load_pem_private_key(key_file["key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    got = await api.ok("application", "GetApplicationKey", {"keyId": created["keyId"]})
    assert got == {
        "keyId": created["keyId"],
        "creationDate": created["creationDate"],
        "expirationDate": expires.isoformat().replace("+00:00", "Z"),
    }
    # The private half is never stored: nothing but the public key is in the read model.
    async with api.runtime.db.read() as conn:
        from donjon.core.identity.app_keys import app_key

        row = await app_key(conn, api.instance_id, client_id, created["keyId"])
    assert row is not None and "PRIVATE" not in row.public_key


async def test_an_uploaded_public_key_and_the_default_expiration(api: Api) -> None:
    project_id = await new_project(api)
    app = await key_app(api, project_id, OIDC_JWT)
    created = await api.ok(
        "application",
        "CreateApplicationKey",
        {"applicationId": app["applicationId"], "publicKey": b64(public_pem())},
    )
    assert "keyDetails" not in created
    got = await api.ok("application", "GetApplicationKey", {"keyId": created["keyId"]})
    assert got["expirationDate"] == "9999-01-01T00:00:00Z"


async def test_bad_key_requests_are_refused(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await key_app(api, project_id))["applicationId"]
    basic = (await create(api, project_id, "basic", oidcConfiguration=WEB))["applicationId"]
    saml_free = (await create(api, project_id, "api", apiConfiguration={}))["applicationId"]
    before = await api.runtime.store.max_position()
    for body, code, field in [
        ({"applicationId": app_id, "publicKey": b64(public_pem(1024))}, "invalid_argument", ""),
        ({"applicationId": app_id, "publicKey": b64(b"not a key")}, "invalid_argument", ""),
        (
            {"applicationId": app_id, "expirationDate": "2001-01-01T00:00:00Z"},
            "invalid_argument",
            "expirationDate",
        ),
        ({"applicationId": app_id, "expirationDate": "tomorrow"}, "invalid_argument", ""),
        ({"applicationId": basic}, "failed_precondition", "private_key_jwt"),
        ({"applicationId": saml_free}, "failed_precondition", "private_key_jwt"),
        ({"applicationId": "nope"}, "not_found", ""),
        ({}, "invalid_argument", "applicationId"),
    ]:
        status, got_code, message = await api.error("application", "CreateApplicationKey", body)
        assert got_code == code and field in message, (body, message)
        assert 400 <= status < 500
    assert await api.runtime.store.max_position() == before
    assert (await api.error("application", "GetApplicationKey", {"keyId": "nope"}))[1] == (
        "not_found"
    )
    assert (await api.error("application", "GetApplicationKey", {}))[1] == "invalid_argument"
    assert (await api.error("application", "DeleteApplicationKey", {"keyId": "nope"}))[1] == (
        "not_found"
    )


async def test_list_filters_and_delete(api: Api) -> None:
    p1, p2 = await new_project(api, "One"), await new_project(api, "Two")
    a1 = (await key_app(api, p1))["applicationId"]
    a2 = (await key_app(api, p2))["applicationId"]
    k1 = (await api.ok("application", "CreateApplicationKey", {"applicationId": a1}))["keyId"]
    k2 = (await api.ok("application", "CreateApplicationKey", {"applicationId": a1}))["keyId"]
    k3 = (await api.ok("application", "CreateApplicationKey", {"applicationId": a2}))["keyId"]

    async def ids(**body: Any) -> list[str]:
        listed = await api.ok("application", "ListApplicationKeys", body)
        return [k["keyId"] for k in listed["keys"]]

    assert sorted(await ids()) == sorted([k1, k2, k3])
    assert await ids(
        filters=[{"applicationIdFilter": {"applicationId": a1}}],
        sortingColumn="APPLICATION_KEYS_SORT_BY_CREATION_DATE",
        pagination={"asc": True},
    ) == [k1, k2]
    assert await ids(filters=[{"projectIdFilter": {"projectId": p2}}]) == [k3]
    assert len(await ids(filters=[{"organizationIdFilter": {"organizationId": api.org_id}}])) == 3
    listed = await api.ok(
        "application", "ListApplicationKeys", {"filters": [{"projectIdFilter": {"projectId": p2}}]}
    )
    assert listed["keys"][0] == {
        "keyId": k3,
        "applicationId": a2,
        "projectId": p2,
        "organizationId": api.org_id,
        "creationDate": listed["keys"][0]["creationDate"],
        "expirationDate": "9999-01-01T00:00:00Z",
    }
    assert listed["pagination"] == {"totalResult": "1", "appliedLimit": "100"}
    assert (await api.error("application", "ListApplicationKeys", {"filters": [{}]}))[1] == (
        "invalid_argument"
    )
    # A key is deleted through its app (a key id of another app is not found).
    wrong = {"keyId": k1, "applicationId": a2}
    assert (await api.error("application", "DeleteApplicationKey", wrong))[1] == "not_found"
    deleted = await api.ok(
        "application", "DeleteApplicationKey", {"keyId": k1, "applicationId": a1, "projectId": p1}
    )
    assert deleted["deletionDate"].endswith("Z")
    assert sorted(await ids()) == sorted([k2, k3])
    # Removing the app removes its keys.
    await api.ok("application", "DeleteApplication", {"applicationId": a1})
    assert await ids() == [k3]


async def test_keys_need_the_app_permissions(api: Api) -> None:
    mine, other = await new_project(api, "Mine"), await new_project(api, "Other")
    theirs = (await key_app(api, other))["applicationId"]
    their_key = (await api.ok("application", "CreateApplicationKey", {"applicationId": theirs}))[
        "keyId"
    ]
    owner = await machine_user(api, memberships=[("project", mine, api.org_id, ["PROJECT_OWNER"])])
    app_id = (await key_app(owner, mine))["applicationId"]
    my_key = (await owner.ok("application", "CreateApplicationKey", {"applicationId": app_id}))[
        "keyId"
    ]
    listed = await owner.ok("application", "ListApplicationKeys")
    assert [k["keyId"] for k in listed["keys"]] == [my_key]
    for method, body in [
        ("CreateApplicationKey", {"applicationId": theirs}),
        ("GetApplicationKey", {"keyId": their_key}),
        ("DeleteApplicationKey", {"keyId": their_key}),
    ]:
        assert (await owner.error("application", method, body))[1] == "permission_denied", method


async def test_key_responses_parse_with_the_official_sdk_models(api: Api) -> None:
    from zitadel_client.models import (
        ApplicationServiceCreateApplicationKeyResponse,
        ApplicationServiceDeleteApplicationKeyResponse,
        ApplicationServiceGetApplicationKeyResponse,
        ApplicationServiceListApplicationKeysResponse,
    )

    app_id = (await key_app(api, await new_project(api)))["applicationId"]
    created = await api.ok("application", "CreateApplicationKey", {"applicationId": app_id})
    parsed = ApplicationServiceCreateApplicationKeyResponse.from_dict(created)
    assert parsed is not None and parsed.key_id == created["keyId"]
    got = await api.ok("application", "GetApplicationKey", {"keyId": created["keyId"]})
    assert ApplicationServiceGetApplicationKeyResponse.from_dict(got) is not None
    listed = await api.ok("application", "ListApplicationKeys")
    parsed_list = ApplicationServiceListApplicationKeysResponse.from_dict(listed)
    assert parsed_list is not None and parsed_list.keys and parsed_list.keys[0].application_id
    deleted = await api.ok("application", "DeleteApplicationKey", {"keyId": created["keyId"]})
    assert ApplicationServiceDeleteApplicationKeyResponse.from_dict(deleted) is not None
