"""RP-initiated logout: `GET|POST /oidc/v1/end_session` (see `donjon.plugins.oidc.end_session`).

Ends the login and sends the browser to the checked
`post_logout_redirect_uri` (with `state`), or shows a "signed out" page.
A bad hint, client or redirect URI gets a plain 400 page.
"""

from __future__ import annotations

import html
from typing import Any

from litestar import Request, Response, route
from litestar.di import NamedDependency
from litestar.response import Redirect

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_requests import redirect_with
from donjon.plugins.oidc.authorize_request import NotRedirectable
from donjon.plugins.oidc.end_session import check_logout, end_login
from donjon.plugins.oidc.endpoints.authorize import authorize_params, error_page
from donjon.plugins.oidc.errors import NO_STORE
from donjon.plugins.oidc.issuer import END_SESSION_PATH, issuer_of
from donjon.plugins.oidc.provider import provider_of


def signed_out_page() -> Response[str]:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Signed out</title></head>"
        f"<body><h1>{html.escape('You are signed out')}</h1></body></html>"
    )
    return Response(body, status_code=200, media_type="text/html; charset=utf-8", headers=NO_STORE)


@route(END_SESSION_PATH, http_method=["GET", "POST"])
async def end_session(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        params = await authorize_params(request)
        logout = await check_logout(provider_of(runtime), issuer, params)
    except NotRedirectable as exc:
        return error_page(exc.description)
    await end_login(runtime, instance_id, logout)
    if not logout.redirect_uri:
        return signed_out_page()
    url = redirect_with(logout.redirect_uri, "query", {"state": logout.state})
    return Redirect(url, status_code=302, headers=NO_STORE)
