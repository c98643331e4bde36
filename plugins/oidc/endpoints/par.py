"""The pushed authorization request endpoint (RFC 9126): `POST /oauth/v2/par`.

The client authenticates as at the token endpoint; the parameters are those
of an authorization request and pass the same checks. A DPoP proof sent
with the push binds the code to its key, as `dpop_jkt` would (RFC 9449 §10.1). Answers 201 with
`request_uri` and `expires_in`, or an OAuth error as JSON (`invalid_request`
for a bad client binding or redirect URI, the check's error otherwise).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_requests import add_auth_request
from donjon.plugins.oidc.authorize_request import NotRedirectable, check_authorize_request
from donjon.plugins.oidc.client_auth import authenticate_client
from donjon.plugins.oidc.dpop.binding import (
    nonce_headers,
    proof_headers,
    pushed_dpop_jkt,
    verified_proof,
)
from donjon.plugins.oidc.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    error_response,
    json_response,
)
from donjon.plugins.oidc.forms import read_form
from donjon.plugins.oidc.issuer import PAR_PATH, issuer_of
from donjon.plugins.oidc.par import REQUEST_URI_PREFIX, pushed_params
from donjon.plugins.oidc.provider import provider_of


@post(PAR_PATH)
async def par(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        form = await read_form(request)
        client = await authenticate_client(
            provider, issuer, request, form, endpoint=issuer.endpoint(PAR_PATH)
        )
        if client is None:
            raise InvalidClient("pushed authorization requests need client authentication")
        params = pushed_dpop_jkt(
            pushed_params(client, form), await verified_proof(provider, issuer, request, PAR_PATH)
        )
        async with runtime.db.read() as conn:
            checked = await check_authorize_request(conn, instance_id, params)
    except NotRedirectable as exc:
        return error_response(InvalidRequest(exc.description))
    except OAuthError as exc:
        return error_response(exc)
    auth_request_id = await add_auth_request(runtime, instance_id, issuer.url, checked, pushed=True)
    lifetime = int(provider.settings.PushedRequestLifetime.total_seconds())
    response = json_response(
        {"request_uri": REQUEST_URI_PREFIX + auth_request_id, "expires_in": lifetime}, 201
    )
    if proof_headers(request):
        response.headers.update(await nonce_headers(provider, instance_id))
    return response
