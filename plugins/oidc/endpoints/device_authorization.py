"""The device authorization endpoint (RFC 8628 §3.1): `POST /oauth/v2/device_authorization`.

For OIDC apps with the device code grant, authenticating as registered (a
public app by its client id). The scope is checked as at `/authorize`. The
answer: `device_code`, `user_code` (`XXXX-XXXX`), `verification_uri` (the
hosted login's `/ui/login/device`), `verification_uri_complete` (with the
code), `expires_in`, `interval`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, post
from litestar.di import NamedDependency

from donjon.core.identity import apps
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.authorize_request import check_scopes
from donjon.plugins.oidc.client_auth import authenticate_client
from donjon.plugins.oidc.device import VERIFICATION_PATH, add_device_request
from donjon.plugins.oidc.errors import (
    InvalidClient,
    OAuthError,
    UnauthorizedClient,
    error_response,
    json_response,
)
from donjon.plugins.oidc.forms import read_form
from donjon.plugins.oidc.issuer import DEVICE_AUTHORIZATION_PATH, issuer_of
from donjon.plugins.oidc.provider import provider_of

DEVICE_GRANT = "device_code"


@post(DEVICE_AUTHORIZATION_PATH)
async def device_authorization(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        form = await read_form(request)
        client = await authenticate_client(
            provider, issuer, request, form, endpoint=issuer.endpoint(DEVICE_AUTHORIZATION_PATH)
        )
        if client is None:
            raise InvalidClient("the device authorization needs a client")
        if client.is_machine or client.app_kind != apps.OIDC:
            raise UnauthorizedClient("device authorization is for OIDC applications")
        if DEVICE_GRANT not in client.grant_types:
            raise UnauthorizedClient("the application may not use the device code grant")
        async with runtime.db.read() as conn:
            scopes = await check_scopes(conn, instance_id, form.get("scope"))
            app = await apps.app_by_client_id(conn, instance_id, client.client_id)
        assert app is not None
    except OAuthError as exc:
        return error_response(exc)
    started = await add_device_request(runtime, instance_id, app, scopes)
    verification = issuer.endpoint(VERIFICATION_PATH)
    complete = f"{verification}?{urlencode({'user_code': started.user_code})}"
    return json_response(
        {
            "device_code": started.device_code,
            "user_code": started.user_code,
            "verification_uri": verification,
            "verification_uri_complete": complete,
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
    )
