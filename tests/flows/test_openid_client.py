"""The authorization code flow with PKCE against a real donjon, driven by node's
`openid-client` (panva's certified RP library): discovery, the authorization URL, the
login through the SessionService and OIDCService.CreateCallback (the custom login path,
over plain HTTP), the code exchange with ID token validation (signature, nonce, iss in
the callback per RFC 9207, at_hash), refresh rotation and reuse detection, userinfo,
and the end_session URL.

openid-client is installed with npm into a temporary directory once per session.
Without node or npm (or the registry) the tests skip locally, saying what is missing,
and fail in CI (DONJON_TEST_REQUIRE_TOOLS=1, see tests.conftest.require_tool)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import require_tool
from tests.flows.conftest import DonjonServer, start_donjon, stop_donjon

RP_SCRIPT = Path(__file__).with_name("openid_client_rp.mjs")
REDIRECT = "https://rp.example.com/callback"
BYE = "https://rp.example.com/bye"
PASSWORD = "Secr3t-Passw0rd!"


@pytest.fixture(scope="session")
def openid_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with openid-client installed and the RP script beside it."""
    has_node = shutil.which("node") and shutil.which("npm")
    require_tool(
        None if has_node else "node and npm drive openid-client here (apt-get install nodejs npm)"
    )
    where = tmp_path_factory.mktemp("openid-client")
    (where / "package.json").write_text('{"name": "rp", "private": true, "type": "module"}')
    done = subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "openid-client@6"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        require_tool(f"npm install openid-client failed: {done.stderr[-500:]}")
    shutil.copy(RP_SCRIPT, where / "rp.mjs")
    yield where


def rp(where: Path, *, script: str = "rp.mjs", **data: Any) -> dict[str, Any]:
    """Run an RP script of `where` with `data`; its last output line, as JSON."""
    done = subprocess.run(
        ["node", str(where / script), json.dumps(data)],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def connect(server: DonjonServer, service: str, method: str, body: dict[str, Any]) -> Any:
    r = httpx.post(
        f"{server.url}/{service}/{method}",
        json=body,
        headers={"authorization": f"Bearer {server.pat}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def web_app(server: DonjonServer) -> tuple[str, str]:
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
                "postLogoutRedirectUris": [BYE],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": [
                    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
                    "OIDC_GRANT_TYPE_REFRESH_TOKEN",
                ],
                "applicationType": "OIDC_APP_TYPE_WEB",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
                "idTokenUserinfoAssertion": True,
            },
        },
    )["oidcConfiguration"]
    return created["clientId"], created["clientSecret"]


def person(server: DonjonServer) -> str:
    return connect(
        server,
        "zitadel.user.v2.UserService",
        "AddHumanUser",
        {
            "username": "alice",
            "profile": {"givenName": "Alice", "familyName": "Liddell"},
            "email": {"email": "alice@example.com", "isVerified": True},
            "password": {"password": PASSWORD},
        },
    )["userId"]


def custom_login(server: DonjonServer, authorization_url: str) -> str:
    """What a custom login does: follow /authorize to the login, log in with the
    SessionService, finish with CreateCallback; the callback URL."""
    r = httpx.get(authorization_url, follow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    login = urlsplit(r.headers["location"])
    assert login.path == "/ui/login/login"
    auth_request_id = parse_qs(login.query)["authRequest"][0]
    pending = connect(
        server,
        "zitadel.oidc.v2.OIDCService",
        "GetAuthRequest",
        {"authRequestId": auth_request_id},
    )["authRequest"]
    assert pending["redirectUri"] == REDIRECT
    session = connect(
        server,
        "zitadel.session.v2.SessionService",
        "CreateSession",
        {
            "checks": {
                "user": {"loginName": "alice@donjon.localhost"},
                "password": {"password": PASSWORD},
            }
        },
    )
    return connect(
        server,
        "zitadel.oidc.v2.OIDCService",
        "CreateCallback",
        {
            "authRequestId": auth_request_id,
            "session": {
                "sessionId": session["sessionId"],
                "sessionToken": session["sessionToken"],
            },
        },
    )["callbackUrl"]


def test_code_flow_with_pkce_refresh_userinfo_and_logout(
    donjon_server: DonjonServer, openid_client: Path
) -> None:
    server = donjon_server
    client_id, secret = web_app(server)
    alice = person(server)
    common = {"issuer": server.url, "clientId": client_id, "clientSecret": secret}
    started = rp(
        openid_client,
        phase="start",
        redirectUri=REDIRECT,
        scope="openid profile email offline_access",
        **common,
    )
    assert started["issuer"] == server.url and started["pkceMethods"] == ["S256"]
    assert started["endSession"] == f"{server.url}/oidc/v1/end_session"
    query = parse_qs(urlsplit(started["url"]).query)
    assert query["code_challenge_method"] == ["S256"]

    callback_url = custom_login(server, started["url"])
    assert parse_qs(urlsplit(callback_url).query)["iss"] == [server.url]

    done = rp(
        openid_client,
        phase="finish",
        callbackUrl=callback_url,
        codeVerifier=started["codeVerifier"],
        state=started["state"],
        nonce=started["nonce"],
        postLogoutRedirectUri=BYE,
        **common,
    )
    claims = done["claims"]
    assert claims["sub"] == alice and claims["iss"] == server.url
    assert claims["nonce"] == started["nonce"] and claims["amr"] == ["pwd"]
    assert claims["email"] == "alice@example.com" and claims["at_hash"]
    assert done["tokenType"].lower() == "bearer" and done["hasRefresh"]
    assert done["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert done["userinfo"]["sub"] == alice
    assert done["userinfo"]["email"] == "alice@example.com"
    # Rotation; the refreshed tokens work.
    assert done["refreshedRotated"] and done["refreshedClaims"]["sub"] == alice
    assert done["refreshedUserinfo"]["sub"] == alice
    # Reusing the first refresh token is refused and revokes the family.
    assert done["reuse"] == "invalid_grant" and done["afterReuse"] == "invalid_grant"
    # The code is single use.
    assert done["secondExchange"] == "invalid_grant"

    end = urlsplit(done["endSession"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == f"{server.url}/oidc/v1/end_session"
    r = httpx.get(done["endSession"], follow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["location"] == f"{BYE}?state=bye"


def test_pushed_authorization_request(donjon_server: DonjonServer, openid_client: Path) -> None:
    """openid-client pushes the parameters to /oauth/v2/par (RFC 9126); the browser's URL
    carries only client_id and request_uri; the flow completes as usual."""
    server = donjon_server
    client_id, secret = web_app(server)
    alice = person(server)
    common = {"issuer": server.url, "clientId": client_id, "clientSecret": secret}
    started = rp(
        openid_client,
        phase="start",
        par=True,
        redirectUri=REDIRECT,
        scope="openid offline_access",
        **common,
    )
    assert started["parEndpoint"] == f"{server.url}/oauth/v2/par"
    query = parse_qs(urlsplit(started["url"]).query)
    assert set(query) == {"client_id", "request_uri"}
    callback_url = custom_login(server, started["url"])
    done = rp(
        openid_client,
        phase="finish",
        callbackUrl=callback_url,
        codeVerifier=started["codeVerifier"],
        state=started["state"],
        nonce=started["nonce"],
        postLogoutRedirectUri=BYE,
        **common,
    )
    assert done["claims"]["sub"] == alice and done["refreshedRotated"]


def form_fields(page: httpx.Response) -> dict[str, str]:
    """The hidden fields of the page's first form (csrf, userCode, sessionId...)."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    return {name: html.unescape(value) for name, value in fields}


def device_pages(verification_uri_complete: str, login_name: str) -> str:
    """Open the code page, confirm the code, sign in, approve: the last page's text."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(verification_uri_complete)
        assert page.status_code == 200, page.text
        code = re.search(r'name="code" value="([^"]+)"', page.text)
        assert code, page.text
        base = verification_uri_complete.split("/ui/")[0]
        page = browser.post(f"{base}/ui/login/device", data={**form_fields(page), "code": code[1]})
        page = browser.post(
            f"{base}/ui/login/login", data={**form_fields(page), "loginName": login_name}
        )
        page = browser.post(
            f"{base}/ui/login/password", data={**form_fields(page), "password": PASSWORD}
        )
        assert "/ui/login/device/consent" in str(page.url), page.text
        page = browser.post(
            f"{base}/ui/login/device/consent", data={**form_fields(page), "decision": "approve"}
        )
        assert page.status_code == 200, page.text
        return page.text


def test_device_authorization(donjon_server: DonjonServer, openid_client: Path) -> None:
    """openid-client's device flow (RFC 8628) with a public client: initiate, the person
    opens verification_uri_complete, signs in and approves on the hosted login's pages,
    the device's polling gets tokens."""
    server = donjon_server
    project_id = connect(
        server, "zitadel.project.v2.ProjectService", "CreateProject", {"name": "TV"}
    )["projectId"]
    client_id = connect(
        server,
        "zitadel.application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "tv",
            "oidcConfiguration": {
                "redirectUris": ["http://127.0.0.1/callback"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": [
                    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
                    "OIDC_GRANT_TYPE_DEVICE_CODE",
                    "OIDC_GRANT_TYPE_REFRESH_TOKEN",
                ],
                "applicationType": "OIDC_APP_TYPE_NATIVE",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
            },
        },
    )["oidcConfiguration"]["clientId"]
    alice = person(server)
    common = {"issuer": server.url, "clientId": client_id, "clientSecret": ""}
    started = rp(openid_client, phase="device-start", scope="openid offline_access", **common)
    assert started["verification_uri"] == f"{server.url}/ui/login/device"
    # The person's half through the hosted login's pages, as a browser would.
    approved = device_pages(started["verification_uri_complete"], "alice@donjon.localhost")
    assert "Device connected" in approved
    done = rp(openid_client, phase="device-poll", deviceResponse=started, **common)
    assert done["claims"]["sub"] == alice and done["hasRefresh"]
    assert done["scope"] == "openid offline_access"


def test_client_credentials_introspection_and_revocation(
    donjon_server: DonjonServer, openid_client: Path
) -> None:
    """openid-client as a machine user (client credentials), as a resource server (an API
    app introspecting), and revoking the machine's token."""
    server = donjon_server
    project_id = connect(
        server, "zitadel.project.v2.ProjectService", "CreateProject", {"name": "API"}
    )["projectId"]
    api_app = connect(
        server,
        "zitadel.application.v2.ApplicationService",
        "CreateApplication",
        {"projectId": project_id, "name": "resource", "apiConfiguration": {}},
    )["apiConfiguration"]
    users = "zitadel.user.v2.UserService"
    robot = connect(server, users, "CreateUser", {"username": "robot", "machine": {"name": "R"}})
    secret = connect(server, users, "AddSecret", {"userId": robot["id"]})["clientSecret"]
    machine = {"issuer": server.url, "clientId": "robot", "clientSecret": secret}
    resource = {
        "issuer": server.url,
        "clientId": api_app["clientId"],
        "clientSecret": api_app["clientSecret"],
    }
    scope = f"openid urn:zitadel:iam:org:project:id:{project_id}:aud"
    got = rp(openid_client, phase="client-credentials", scope=scope, **machine)
    assert got["accessToken"] and got["expiresIn"] > 0
    active = rp(openid_client, phase="introspect", token=got["accessToken"], **resource)
    assert active["active"] is True and active["sub"] == robot["id"]
    assert project_id in active["aud"]
    assert rp(openid_client, phase="revoke", token=got["accessToken"], **machine)["revoked"]
    gone = rp(openid_client, phase="introspect", token=got["accessToken"], **resource)
    assert gone == {"active": False}


@pytest.fixture
def nonce_server(tmp_path: Path, store_env: dict[str, str]) -> Iterator[DonjonServer]:
    """A donjon that requires server nonces in DPoP proofs (RFC 9449 §8, §9)."""
    server = start_donjon(tmp_path, store_env, {"DONJON_PLUGINS_OIDC_REQUIREDPOPNONCE": "true"})
    try:
        yield server
    finally:
        stop_donjon(server)


def test_dpop_code_flow_refresh_and_userinfo(
    nonce_server: DonjonServer, openid_client: Path
) -> None:
    """openid-client with a DPoP key (RFC 9449) and a public client, against a donjon that
    requires DPoP nonces (openid-client retries with the `DPoP-Nonce` it is given):
    `dpop_jkt` binds the code, the code exchange gets a DPoP-bound access token and a
    refresh token bound to the key; userinfo takes the token with proofs and refuses it
    as a Bearer token; refreshing needs the same key."""
    server = nonce_server
    project_id = connect(
        server, "zitadel.project.v2.ProjectService", "CreateProject", {"name": "SPA"}
    )["projectId"]
    client_id = connect(
        server,
        "zitadel.application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "spa",
            "oidcConfiguration": {
                "redirectUris": [REDIRECT],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": [
                    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
                    "OIDC_GRANT_TYPE_REFRESH_TOKEN",
                ],
                "applicationType": "OIDC_APP_TYPE_USER_AGENT",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
                "dpopBoundAccessTokens": True,
            },
        },
    )["oidcConfiguration"]["clientId"]
    alice = person(server)
    common = {"issuer": server.url, "clientId": client_id, "clientSecret": ""}
    started = rp(
        openid_client,
        phase="dpop-start",
        redirectUri=REDIRECT,
        scope="openid profile offline_access",
        **common,
    )
    assert "ES256" in started["algs"]
    assert parse_qs(urlsplit(started["url"]).query)["dpop_jkt"] == [started["jkt"]]
    callback_url = custom_login(server, started["url"])
    done = rp(
        openid_client,
        phase="dpop-finish",
        callbackUrl=callback_url,
        codeVerifier=started["codeVerifier"],
        state=started["state"],
        privateJwk=started["privateJwk"],
        publicJwk=started["publicJwk"],
        **common,
    )
    assert done["tokenType"] == "dpop" and done["hasRefresh"]
    assert done["claims"]["sub"] == alice
    assert done["userinfo"]["sub"] == alice, done["userinfo"]
    assert done["asBearer"] == "dpop:invalid_token"
    assert done["refreshWithoutKey"] == "invalid_dpop_proof"
    assert done["refreshWithOtherKey"] == "invalid_grant"
    assert done["refreshedTokenType"] == "dpop" and done["refreshedRotated"]
    assert done["refreshedUserinfo"]["sub"] == alice, done["refreshedUserinfo"]
