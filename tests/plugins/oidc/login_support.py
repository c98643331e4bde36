"""Helpers for the authorization code tests: OIDC apps, authorize calls, the custom
login (SessionService + OIDCService.CreateCallback), PKCE pairs. No tests here."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.api.conftest import Api
from tests.plugins.oidc.support import project

SESSIONS = "zitadel.session.v2.SessionService"
OIDC = "zitadel.oidc.v2.OIDCService"
PASSWORD = "Secr3t-Passw0rd!"
REDIRECT = "https://app.example.com/callback"
AUTHORIZE_URL = "/oauth/v2/authorize"


@dataclass
class App:
    client_id: str
    secret: str
    app_id: str
    project_id: str

    def basic(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


async def oidc_app(api: Api, project_id: str | None = None, **config: Any) -> App:
    """A web app (basic auth, code + refresh) unless `config` says otherwise."""
    project_id = project_id or await project(api, f"Shop {secrets.token_hex(4)}")
    body = {
        "redirectUris": [REDIRECT],
        "postLogoutRedirectUris": ["https://app.example.com/bye"],
        "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
        "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
        "applicationType": "OIDC_APP_TYPE_WEB",
        "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
        **config,
    }
    created = await api.ok(
        "application",
        "CreateApplication",
        {"projectId": project_id, "name": "web", "oidcConfiguration": body},
    )
    oidc = created["oidcConfiguration"]
    return App(oidc["clientId"], oidc.get("clientSecret", ""), created["applicationId"], project_id)


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorize(api: Api, params: dict[str, str], *, post: bool = False) -> httpx.Response:
    if post:
        return await api.client.post(AUTHORIZE_URL, data=params)
    return await api.client.get(AUTHORIZE_URL, params=params)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fragment_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


async def add_person(api: Api, username: str = "alice", org_id: str | None = None) -> str:
    body: dict[str, Any] = {
        "username": username,
        "profile": {"givenName": username.title(), "familyName": "Liddell"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
        "password": {"password": PASSWORD},
    }
    if org_id:
        body["organization"] = {"orgId": org_id}
    return (await api.ok("user", "AddHumanUser", body))["userId"]


async def session(api: Api, login_name: str = "alice@donjon.localhost") -> dict[str, Any]:
    checks = {"user": {"loginName": login_name}, "password": {"password": PASSWORD}}
    return await api.ok(SESSIONS, "CreateSession", {"checks": checks})


async def start(api: Api, app: App, **params: str) -> str:
    """GET /authorize for `app` (code flow); the auth request id from the login redirect."""
    base = {"client_id": app.client_id, "redirect_uri": REDIRECT, "response_type": "code"}
    r = await authorize(api, {**base, **params})
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert "/ui/login/login?" in location, location
    return query_of(location)["authRequest"]


async def callback(api: Api, auth_request_id: str, s: dict[str, Any]) -> str:
    """CreateCallback with the session; the callback URL."""
    body = {
        "authRequestId": auth_request_id,
        "session": {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]},
    }
    return (await api.ok(OIDC, "CreateCallback", body))["callbackUrl"]


async def code_for(
    api: Api, app: App, scope: str = "openid profile email", **params: str
) -> tuple[str, str]:
    """(code, verifier): a full login for `app` with PKCE, as the custom login does it."""
    verifier, challenge = pkce()
    auth_request_id = await start(
        api,
        app,
        scope=scope,
        code_challenge=challenge,
        code_challenge_method="S256",
        state="st-1",
        nonce="n-1",
        **params,
    )
    url = await callback(api, auth_request_id, await session(api))
    return query_of(url)["code"], verifier
