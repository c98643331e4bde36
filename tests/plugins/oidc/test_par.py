"""Pushed authorization requests (RFC 9126): push, authorize with request_uri, log in,
exchange; refused pushes; request_uris of other clients, used or expired; requiring PAR."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from donjon.plugins.oidc.provider import provider_of
from tests.api.conftest import Api
from tests.plugins.oidc.login_support import (
    REDIRECT,
    App,
    add_person,
    authorize,
    callback,
    oidc_app,
    pkce,
    query_of,
    session,
)
from tests.plugins.oidc.support import issuer, token

pytestmark = pytest.mark.anyio
PAR = "/oauth/v2/par"


def pushed(app: App, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "par-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def push(api: Api, app: App, form: dict[str, str], **kw: Any) -> Any:
    kw.setdefault("auth", app.basic())
    return await api.client.post(PAR, data=form, **kw)


async def test_push_then_authorize_with_the_request_uri(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    verifier, challenge = pkce()
    r = await push(api, app, pushed(app, challenge))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60 and r.headers["cache-control"] == "no-store"
    # Only client_id and request_uri travel through the browser; other parameters are ignored.
    r = await authorize(
        api,
        {"client_id": app.client_id, "request_uri": body["request_uri"], "state": "ignored"},
    )
    assert r.status_code == 302 and "/ui/login/login?authRequest=" in r.headers["location"]
    auth_request_id = query_of(r.headers["location"])["authRequest"]
    url = await callback(api, auth_request_id, await session(api))
    params = query_of(url)
    assert params["state"] == "par-state" and params["iss"] == issuer(api)
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert (await token(api, form, auth=app.basic())).status_code == 200
    # Finished: the request_uri is spent.
    again = await authorize(api, {"client_id": app.client_id, "request_uri": body["request_uri"]})
    assert again.status_code == 400


async def test_refused_pushes(api: Api) -> None:
    app = await oidc_app(api)
    verifier, challenge = pkce()
    r = await push(api, app, pushed(app, challenge), auth=(app.client_id, "wrong"))
    assert r.status_code == 401
    r = await push(api, app, pushed(app, challenge), auth=None)
    assert r.status_code == 401
    r = await push(api, app, pushed(app, verifier, code_challenge_method="plain"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await push(api, app, pushed(app, challenge, redirect_uri="https://evil.example/cb"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await push(api, app, pushed(app, challenge, request_uri="urn:x"))
    assert r.status_code == 400
    r = await push(api, app, pushed(app, challenge, client_id="someone-else"))
    assert r.status_code == 400


async def test_a_request_uri_is_for_its_client_and_expires(api: Api) -> None:
    app = await oidc_app(api)
    other = await oidc_app(api)
    _verifier, challenge = pkce()
    request_uri = (await push(api, app, pushed(app, challenge))).json()["request_uri"]
    r = await authorize(api, {"client_id": other.client_id, "request_uri": request_uri})
    assert r.status_code == 400
    r = await authorize(api, {"request_uri": request_uri})
    assert r.status_code == 400
    settings = provider_of(api.runtime).settings
    saved = settings.PushedRequestLifetime
    settings.PushedRequestLifetime = timedelta(seconds=-1)
    try:
        r = await authorize(api, {"client_id": app.client_id, "request_uri": request_uri})
        assert r.status_code == 400
    finally:
        settings.PushedRequestLifetime = saved
    # A front-channel auth request id is not a request_uri.
    r = await authorize(
        api,
        {
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
        },
    )
    front = query_of(r.headers["location"])["authRequest"]
    r = await authorize(
        api,
        {"client_id": app.client_id, "request_uri": f"urn:ietf:params:oauth:request_uri:{front}"},
    )
    assert r.status_code == 400


async def test_pushed_requests_can_be_required(api: Api) -> None:
    app = await oidc_app(api)
    settings = provider_of(api.runtime).settings
    settings.RequirePushedAuthorizationRequests = True
    try:
        doc = (await api.client.get("/.well-known/openid-configuration")).json()
        assert doc["require_pushed_authorization_requests"] is True
        assert doc["pushed_authorization_request_endpoint"] == f"{issuer(api)}/oauth/v2/par"
        r = await authorize(
            api,
            {
                "client_id": app.client_id,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "state": "s",
            },
        )
        assert r.status_code == 302
        assert query_of(r.headers["location"])["error"] == "invalid_request"
        _verifier, challenge = pkce()
        request_uri = (await push(api, app, pushed(app, challenge))).json()["request_uri"]
        r = await authorize(api, {"client_id": app.client_id, "request_uri": request_uri})
        assert r.status_code == 302 and "/ui/login/login" in r.headers["location"]
    finally:
        settings.RequirePushedAuthorizationRequests = False


async def test_an_app_can_require_pushed_requests(api: Api) -> None:
    strict = await oidc_app(api, requirePushedAuthorizationRequests=True)
    relaxed = await oidc_app(api)
    got = await api.ok("application", "GetApplication", {"applicationId": strict.app_id})
    assert got["application"]["oidcConfiguration"]["requirePushedAuthorizationRequests"] is True
    front = {"redirect_uri": REDIRECT, "response_type": "code", "state": "s"}
    r = await authorize(api, {"client_id": strict.client_id, **front})
    assert r.status_code == 302
    refused = query_of(r.headers["location"])
    assert refused["error"] == "invalid_request" and refused["state"] == "s"
    assert "pushed" in refused["error_description"]
    # Other apps are not affected, and discovery keeps the instance-wide flag.
    r = await authorize(api, {"client_id": relaxed.client_id, **front})
    assert "/ui/login/login?authRequest=" in r.headers["location"]
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert doc["require_pushed_authorization_requests"] is False
    _verifier, challenge = pkce()
    request_uri = (await push(api, strict, pushed(strict, challenge))).json()["request_uri"]
    r = await authorize(api, {"client_id": strict.client_id, "request_uri": request_uri})
    assert r.status_code == 302 and "/ui/login/login?authRequest=" in r.headers["location"]
    # The option is changed through UpdateApplication like any other setting.
    await api.ok(
        "application",
        "UpdateApplication",
        {
            "applicationId": strict.app_id,
            "oidcConfiguration": {"requirePushedAuthorizationRequests": False},
        },
    )
    r = await authorize(api, {"client_id": strict.client_id, **front})
    assert "/ui/login/login?authRequest=" in r.headers["location"]
