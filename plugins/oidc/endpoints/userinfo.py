"""The UserInfo endpoint (OIDC Core §5.3): `GET|POST /oidc/v1/userinfo`.

The access token comes as `Authorization: Bearer` or, with POST, as the
form parameter `access_token` (RFC 6750 §2.2; never in the query). It must
be active in this instance and carry `openid`; the answer holds the user's
claims by the token's scopes (see `claims`). Errors are RFC 6750's: 401
`invalid_token` with a `WWW-Authenticate: Bearer` challenge, 403
`insufficient_scope`.

A DPoP-bound token (RFC 9449 §7) comes as `Authorization: DPoP <token>`
with a proof of its key for this request (`htm`, `htu` of this endpoint,
`ath` the token's hash); as `Bearer` it is refused. DPoP errors are 401 with
a `WWW-Authenticate: DPoP error=..., algs=...` challenge.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, route
from litestar.di import NamedDependency

from donjon.core.api.auth import BEARER, DPOP
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.claims import (
    customized,
    load_user,
    role_claims,
    user_claims,
    wants_roles,
)
from donjon.plugins.oidc.dpop.binding import (
    ALGS,
    authorization_of,
    check_presentation,
    dpop_challenge,
    nonce_headers,
    proof_headers,
    verified_proof,
)
from donjon.plugins.oidc.errors import (
    DPoPChallenge,
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UseDPoPNonce,
    error_response,
    json_response,
)
from donjon.plugins.oidc.forms import FORM_TYPE, read_form
from donjon.plugins.oidc.issuer import USERINFO_PATH, issuer_of
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.scopes import OPENID, PROJECT_AUDIENCE
from donjon.plugins.oidc.tokens.lookup import active_token


@route(USERINFO_PATH, http_method=["GET", "POST"])
async def userinfo(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        scheme, token = await presented_token(request)
        proof = None
        if scheme == DPOP:
            try:
                proof = await verified_proof(
                    provider, issuer, request, USERINFO_PATH, access_token=token
                )
            except (InvalidDPoPProof, UseDPoPNonce) as exc:
                raise dpop_challenge(exc) from None
        found = await active_token(provider, instance_id, token)
        if found is None:
            unknown = "the access token is invalid, expired or revoked"
            if scheme == DPOP:
                raise DPoPChallenge("invalid_token", unknown, ALGS)
            raise InvalidToken(unknown)
        check_presentation(found.dpop_jkt, scheme, proof)
        if OPENID not in found.scopes:
            raise InsufficientScope("userinfo needs a token with the openid scope", OPENID)
        async with runtime.db.read() as conn:
            user = await load_user(conn, instance_id, found.user_id)
            if user is None:
                raise InvalidToken("the access token's user no longer exists")
            claims = await user_claims(conn, instance_id, user, found.scopes)
            if wants_roles(found.scopes):
                # The requested projects, and the audience's (a code flow's app project).
                projects = [
                    m.group(1) for s in found.scopes if (m := PROJECT_AUDIENCE.fullmatch(s))
                ]
                projects += [a for a in found.audience if a not in projects]
                claims.update(await role_claims(conn, instance_id, user["id"], projects))
        added = await customized(
            runtime,
            "userinfo",
            claims,
            user_id=user["id"],
            client_id="",
            instance_id=instance_id,
        )
        response = json_response({**claims, **added})
    except OAuthError as exc:
        response = error_response(exc)
    if proof_headers(request):
        response.headers.update(await nonce_headers(provider, instance_id))
    return response


async def presented_token(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """(scheme, token): `Bearer` or `DPoP` from the header, or a POST form's bearer
    token; InvalidToken without one."""
    from_header = authorization_of(request)
    from_form = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == FORM_TYPE:
        from_form = (await read_form(request)).get("access_token")
    if from_header and from_form:
        raise InvalidRequest("send the access token once (header or form, not both)")
    if from_header:
        return from_header
    if not from_form:
        raise InvalidToken("send the access token as Authorization: Bearer (or DPoP)")
    return BEARER, from_form
