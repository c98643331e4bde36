"""RP-initiated logout: `GET|POST /oidc/v1/end_session` (see `donjon.plugins.oidc.end_session`).

With an `id_token_hint`: ends that login and sends the browser to the checked
`post_logout_redirect_uri` (with `state`), or to the hosted login's
signed-out page (`/ui/login/logout/done`; a plain page without the login).
Without one: the hosted login's logout page (`/ui/login/logout` with
`client_id`, `post_logout_redirect_uri`, `state`) asks which of the
browser's sessions to end (without the login plugin nothing is ended and a
plain page says so). A bad hint, client or redirect URI gets a plain 400 page.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

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

LOGOUT_PAGE = "/ui/login/logout"
SIGNED_OUT_PAGE = "/ui/login/logout/done"


def plain_page(title: str, text: str = "") -> Response[str]:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
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
    hosted_login = runtime.pm.get_plugin("login") is not None
    if not logout.login_session_id and hosted_login:
        query = {
            "client_id": logout.client_id if logout.redirect_uri else "",
            "post_logout_redirect_uri": logout.redirect_uri,
            "state": logout.state if logout.redirect_uri else "",
        }
        kept = urlencode({k: v for k, v in query.items() if v})
        target = issuer.endpoint(LOGOUT_PAGE) + (f"?{kept}" if kept else "")
        return Redirect(target, status_code=302, headers=NO_STORE)
    await end_login(runtime, instance_id, logout)
    if logout.redirect_uri:
        url = redirect_with(logout.redirect_uri, "query", {"state": logout.state})
        return Redirect(url, status_code=302, headers=NO_STORE)
    if hosted_login:
        return Redirect(issuer.endpoint(SIGNED_OUT_PAGE), status_code=302, headers=NO_STORE)
    if not logout.login_session_id:
        return plain_page("Sign out", "No session was named (send id_token_hint): nothing ended.")
    return plain_page("You are signed out")
