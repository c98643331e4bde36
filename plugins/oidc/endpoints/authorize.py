"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2): `GET|POST /oauth/v2/authorize`.

Parameters come in the query (GET) or a form body (POST); none may repeat.
The request is checked (`authorize_request`), stored as an auth request
(`auth_requests.add_auth_request`) and the browser is sent to the login
(`/ui/login/login?authRequest=<id>`, or `{baseUri}/login?authRequest=<id>`
for an app whose login version is 2 with a base URI), which finishes it through
`auth_requests.finish_auth_request` (or the OIDCService's CreateCallback).

With `request_uri` (RFC 9126) the pushed request is used instead (`par`).
A request that was not pushed is refused with `invalid_request` when the
instance requires PAR (`RequirePushedAuthorizationRequests`) or the app does
(its `requirePushedAuthorizationRequests` option).

A bad client or redirect URI gets a plain 400 page: nothing is ever sent to
a URI that is not registered. Every other error goes back to the redirect
URI with `error`, `error_description`, `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, route
from litestar.di import NamedDependency
from litestar.response import Redirect

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_requests import add_auth_request, error_redirect, login_url
from donjon.plugins.oidc.authorize_request import NotRedirectable, check_authorize_request
from donjon.plugins.oidc.errors import NO_STORE, InvalidRequest, OAuthError
from donjon.plugins.oidc.forms import FORM_TYPE, MAX_BODY
from donjon.plugins.oidc.issuer import AUTHORIZE_PATH, issuer_of
from donjon.plugins.oidc.par import pushed_request
from donjon.plugins.oidc.provider import provider_of


async def authorize_params(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The request's parameters; NotRedirectable when one repeats or the body is unreadable."""
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            raise NotRedirectable(f"send the parameters form-encoded ({FORM_TYPE})")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise NotRedirectable("the request body is too large")
        try:
            pairs = parse_qsl(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise NotRedirectable("the request body is not UTF-8") from None
    else:
        pairs = parse_qsl(request.scope.get("query_string", b"").decode("utf-8", "replace"))
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise NotRedirectable(f"{name}: must not be repeated")
        params[name] = value
    return params


def error_page(description: str) -> Response[str]:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sign-in error</title></head>"
        "<body><h1>This sign-in request cannot be processed</h1>"
        f"<p>{html.escape(description)}</p></body></html>"
    )
    return Response(
        body,
        status_code=400,
        media_type="text/html; charset=utf-8",
        headers={**NO_STORE, "X-Frame-Options": "DENY"},
    )


@route(AUTHORIZE_PATH, http_method=["GET", "POST"])
async def authorize(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        params = await authorize_params(request)
        if "request_uri" in params:
            auth_request_id, app = await pushed_request(runtime, instance_id, params)
            target = login_url(issuer.url, auth_request_id, app)
            return Redirect(target, status_code=302, headers=NO_STORE)
        async with runtime.db.read() as conn:
            checked = await check_authorize_request(conn, instance_id, params)
        if provider_of(runtime).settings.RequirePushedAuthorizationRequests:
            exc = InvalidRequest("authorization requests must be pushed to /oauth/v2/par")
            exc.redirect = checked.redirect  # type: ignore[attr-defined]
            raise exc
        if checked.app["require_pushed_authorization_requests"]:
            exc = InvalidRequest(
                "this application's authorization requests must be pushed to /oauth/v2/par"
            )
            exc.redirect = checked.redirect  # type: ignore[attr-defined]
            raise exc
    except NotRedirectable as exc:
        return error_page(exc.description)
    except OAuthError as exc:
        target = exc.redirect  # type: ignore[attr-defined]
        url = error_redirect(
            target.redirect_uri,
            target.response_mode,
            target.state,
            issuer.url,
            exc.error,
            exc.description,
        )
        return Redirect(url, status_code=302, headers=NO_STORE)
    auth_request_id = await add_auth_request(runtime, instance_id, issuer.url, checked)
    target = login_url(issuer.url, auth_request_id, checked.app)
    return Redirect(target, status_code=302, headers=NO_STORE)
