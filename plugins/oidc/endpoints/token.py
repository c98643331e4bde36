"""The token endpoint (RFC 6749 §3.2): `POST /oauth/v2/token`.

Steps: read the form; find the grant by `grant_type` (unknown:
`unsupported_grant_type`); authenticate the client (`client_auth`); check
the grant accepts it (`grants.base.check_client`); check the DPoP proof, if
any, and whether the client must send one (RFC 9449, `dpop.binding`); let
the grant answer. Every answer, error or not, is `Cache-Control: no-store`;
with `RequireDPoPNonce`, answers to requests with a proof carry `DPoP-Nonce`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.client_auth import authenticate_client
from donjon.plugins.oidc.dpop.binding import (
    access_token_binding,
    nonce_headers,
    proof_headers,
    verified_proof,
)
from donjon.plugins.oidc.errors import (
    InvalidRequest,
    OAuthError,
    UnsupportedGrantType,
    error_response,
    json_response,
)
from donjon.plugins.oidc.forms import read_form
from donjon.plugins.oidc.grants import GRANTS
from donjon.plugins.oidc.grants.base import check_client
from donjon.plugins.oidc.issuer import TOKEN_PATH, issuer_of
from donjon.plugins.oidc.provider import provider_of


@post(TOKEN_PATH)
async def token(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequest("grant_type: required")
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(
                f"grant_type {grant_type!r} is not supported (supported: {', '.join(GRANTS)})"
            )
        client = await authenticate_client(
            provider,
            issuer,
            request,
            form,
            endpoint=issuer.token_endpoint,
            unknown_is_anonymous=not grant.CLIENT_REQUIRED,
        )
        check_client(grant, client)
        proof = await verified_proof(provider, issuer, request, TOKEN_PATH)
        access_token_binding(client, proof)
        response = json_response(await grant(provider, issuer, proof).respond(client, form))
    except OAuthError as exc:
        response = error_response(exc)
    if proof_headers(request):
        response.headers.update(await nonce_headers(provider, instance_id))
    return response
