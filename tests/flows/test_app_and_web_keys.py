"""Keys against a real donjon: ZITADEL's SDK makes an application key for an API app
(private_key_jwt), Authlib introspects with the key file until the key is deleted; the SDK
creates and activates an RSA web key, and an ID token then verifies against the JWKS with
RS256; the server's purge job deletes the expired assertion ids on its own."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.flows.conftest import DonjonServer, sdk, start_donjon, stop_donjon

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from authlib.oauth2.rfc7523 import PrivateKeyJWT
    from zitadel_client.models import (
        ApplicationServiceCreateApplicationKeyRequest,
        ApplicationServiceDeleteApplicationKeyRequest,
        WebKeyServiceActivateWebKeyRequest,
        WebKeyServiceCreateWebKeyRequest,
        WebKeyServiceRSA,
        WebKeyServiceRSABits,
        WebKeyServiceRSAHasher,
    )

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using implicit key type"),
]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def server(tmp_path: Path, store_env: dict[str, str]) -> Any:
    # The purge job runs every second and keeps nothing expired.
    purge = {"DONJON_PLUGINS": "{oidc: {PurgeInterval: 1s, PurgeRetention: 0s}}"}
    running = start_donjon(tmp_path, store_env, purge)
    try:
        yield running
    finally:
        stop_donjon(running)


def connect(server: DonjonServer, service: str, method: str, body: dict[str, Any]) -> Any:
    r = httpx.post(
        f"{server.url}/zitadel.{service}/{method}",
        json=body,
        headers={"authorization": f"Bearer {server.pat}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_application_keys_web_keys_and_the_purge_job(server: DonjonServer) -> None:
    zitadel = sdk(server.url, server.pat)
    discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=30).json()
    project_id = connect(server, "project.v2.ProjectService", "CreateProject", {"name": "Api"})[
        "projectId"
    ]
    app = connect(
        server,
        "application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "resource-server",
            "apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"},
        },
    )
    created = zitadel.applications.create_application_key(
        ApplicationServiceCreateApplicationKeyRequest(
            application_id=app["applicationId"], project_id=project_id
        )
    )
    details = created.key_details
    raw = details if isinstance(details, bytes) else base64.b64decode(details)
    key_file = json.loads(raw)
    assert key_file["type"] == "application" and key_file["keyId"] == created.key_id

    # A machine user's token for the API's project, introspected by the API app.
    bot = connect(
        server, "user.v2.UserService", "CreateUser", {"username": "bot", "machine": {"name": "B"}}
    )["id"]
    secret = connect(server, "user.v2.UserService", "AddSecret", {"userId": bot})["clientSecret"]
    with OAuth2Client(
        client_id="bot",
        client_secret=secret,
        scope=f"urn:zitadel:iam:org:project:id:{project_id}:aud",
    ) as client:
        access = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")[
            "access_token"
        ]
    with OAuth2Client(
        client_id=key_file["clientId"],
        client_secret=key_file["key"],
        token_endpoint_auth_method=PrivateKeyJWT(headers={"kid": key_file["keyId"]}),
    ) as api_app:
        seen = api_app.introspect_token(discovery["introspection_endpoint"], token=access)
        assert seen.status_code == 200, seen.text
        assert seen.json()["active"] is True and seen.json()["sub"] == bot
        zitadel.applications.delete_application_key(
            ApplicationServiceDeleteApplicationKeyRequest(key_id=created.key_id)
        )
        refused = api_app.introspect_token(discovery["introspection_endpoint"], token=access)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    # An RSA web key, created and activated through the SDK, signs the next ID token.
    web_key_id = zitadel.webkeys.create_web_key(
        WebKeyServiceCreateWebKeyRequest(
            rsa=WebKeyServiceRSA(
                bits=WebKeyServiceRSABits.RSA_BITS_2048,
                hasher=WebKeyServiceRSAHasher.RSA_HASHER_SHA256,
            )
        )
    ).id
    zitadel.webkeys.activate_web_key(WebKeyServiceActivateWebKeyRequest(id=web_key_id))
    states = {k.id: k.state for k in zitadel.webkeys.list_web_keys({}).web_keys or []}
    assert states[web_key_id] == "STATE_ACTIVE"
    added = connect(server, "user.v2.UserService", "AddKey", {"userId": bot})
    machine_key = json.loads(base64.b64decode(added["keyContent"]))
    now = int(time.time())
    assertion = pyjwt.encode(
        {
            "iss": bot,
            "sub": bot,
            "aud": discovery["issuer"],
            "iat": now,
            "exp": now + 2,
            "jti": uuid.uuid4().hex,
        },
        machine_key["key"],
        algorithm="RS256",
        headers={"kid": machine_key["keyId"]},
    )
    r = httpx.post(
        discovery["token_endpoint"],
        data={"grant_type": JWT_BEARER, "assertion": assertion, "scope": "openid"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    id_token = r.json()["id_token"]
    header = pyjwt.get_unverified_header(id_token)
    assert header == {**header, "alg": "RS256", "kid": web_key_id}
    keys = JsonWebKey.import_key_set(httpx.get(discovery["jwks_uri"], timeout=30).json())
    claims = jwt.decode(id_token, keys)
    claims.validate()
    assert claims["sub"] == bot

    # The assertion's jti expires two seconds after it was made; the job deletes it.
    deadline = time.monotonic() + 20
    while "oidc_used_assertions" not in server.output():
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.5)
    assert "purged expired OIDC rows" in server.output()
