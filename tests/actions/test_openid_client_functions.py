"""Token customisation seen by node's openid-client against a real `donjon start`:
preaccesstoken and preuserinfo targets add claims to the ID token, the JWT access token
and userinfo; reserved claims stay; a failing target with interruptOnError refuses."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.actions.receiver import Receiver
from tests.actions.test_delivery_processes import ACTIONS_ENV
from tests.flows.conftest import (
    DonjonServer,
    start_donjon,
    stop_donjon,
    store_env,  # noqa: F401 - SQLite, then PostgreSQL
)
from tests.flows.test_openid_client import (
    REDIRECT,
    connect,
    custom_login,
    openid_client,  # noqa: F401 - the fixture
    person,
    rp,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).with_name("openid_client_functions.mjs")
SCRIPT = "actions_rp.mjs"  # its name beside the flows' RP
ACTIONS = "zitadel.action.v2.ActionService"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def server(tmp_path: Path, store_env: dict[str, str]) -> Iterator[DonjonServer]:  # noqa: F811
    s = start_donjon(tmp_path, store_env, ACTIONS_ENV)
    try:
        yield s
    finally:
        stop_donjon(s)


def jwt_app(server: DonjonServer) -> tuple[str, str]:
    project_id = connect(
        server, "zitadel.project.v2.ProjectService", "CreateProject", {"name": "RP"}
    )["projectId"]
    created = connect(
        server,
        "zitadel.application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "rp",
            "oidcConfiguration": {
                "redirectUris": [REDIRECT],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                "applicationType": "OIDC_APP_TYPE_WEB",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
                "accessTokenType": "OIDC_TOKEN_TYPE_JWT",
            },
        },
    )["oidcConfiguration"]
    return created["clientId"], created["clientSecret"]


def bind_functions(server: DonjonServer, receiver: Receiver, interrupt: bool) -> None:
    for name in ("preaccesstoken", "preuserinfo"):
        target = connect(
            server,
            ACTIONS,
            "CreateTarget",
            {
                "name": name,
                "endpoint": receiver.url,
                "timeout": "2s",
                "restCall": {"interruptOnError": interrupt},
            },
        )
        connect(
            server,
            ACTIONS,
            "SetExecution",
            {"condition": {"function": {"name": name}}, "targets": [target["id"]]},
        )


def code_flow(server: DonjonServer, where: Path, client_id: str, secret: str) -> dict[str, Any]:
    common = {"issuer": server.url, "clientId": client_id, "clientSecret": secret}
    started = rp(
        where, script=SCRIPT, phase="start", redirectUri=REDIRECT, scope="openid email", **common
    )
    callback = custom_login(server, started["url"])
    return rp(
        where,
        script=SCRIPT,
        phase="finish",
        callbackUrl=callback,
        codeVerifier=started["codeVerifier"],
        state=started["state"],
        nonce=started["nonce"],
        **common,
    )


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def where(openid_client: Path) -> Path:  # noqa: F811 - the fixture above
    """The session's openid-client folder, with this RP beside the flows' (not over it)."""
    shutil.copy(HERE, openid_client / SCRIPT)
    return openid_client


def test_functions_add_claims_to_id_token_access_token_and_userinfo(
    server: DonjonServer, receiver: Receiver, where: Path
) -> None:
    client_id, secret = jwt_app(server)
    alice = person(server)
    bind_functions(server, receiver, interrupt=False)
    receiver.answer = {
        "appendClaims": [
            {"key": "department", "value": "it"},
            {"key": "sub", "value": "someone-else"},
            {"key": "nonce", "value": "forged"},
        ]
    }
    done = code_flow(server, where, client_id, secret)
    assert "error" not in done, done
    # openid-client validated the ID token (signature, nonce, iss, aud).
    assert done["claims"]["department"] == "it" and done["claims"]["sub"] == alice
    assert done["userinfo"]["department"] == "it" and done["userinfo"]["sub"] == alice
    access = payload(done["accessToken"])
    assert access["department"] == "it" and access["sub"] == alice
    functions = {r.json["function"] for r in receiver.requests}
    assert functions == {"function/preaccesstoken", "function/preuserinfo"}


def test_a_failing_function_with_interrupt_on_error_refuses_the_tokens(
    server: DonjonServer, receiver: Receiver, where: Path
) -> None:
    client_id, secret = jwt_app(server)
    person(server)
    bind_functions(server, receiver, interrupt=True)
    receiver.statuses = [500] * 10
    done = code_flow(server, where, client_id, secret)
    assert done["error"] == "access_denied", done
