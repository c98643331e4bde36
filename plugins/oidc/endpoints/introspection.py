"""Token introspection (RFC 7662): `POST /oauth/v2/introspect`.

The caller is an application (an API app, or a confidential OIDC app)
authenticating as it was registered to. As in ZITADEL, a token is reported
active only to an application whose project (or client id) is in the
token's audience; to any other caller, and for any token that is unknown,
expired, revoked, of another instance or of an inactive user, the answer is
`{"active": false}` and nothing more. A token issued by impersonation (token
exchange with an actor) shows its actor as `act` (RFC 8693 §4.1). A refresh token is active only to
the client holding it (`token_type: refresh_token`), while unused. A
DPoP-bound access token (RFC 9449 §6.2) introspects as `token_type: DPoP`
with `cnf: {"jkt": <thumbprint>}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity.users import ACTIVE, INITIAL
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.claims import load_user, user_claims
from donjon.plugins.oidc.client_auth import authenticate_client
from donjon.plugins.oidc.clients import Client
from donjon.plugins.oidc.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    error_response,
    json_response,
)
from donjon.plugins.oidc.forms import read_form
from donjon.plugins.oidc.issuer import INTROSPECT_PATH, Issuer, issuer_of
from donjon.plugins.oidc.provider import Provider, provider_of
from donjon.plugins.oidc.tokens.lookup import ActiveToken, active_token
from donjon.plugins.oidc.tokens.refresh import find_refresh_token

INACTIVE: dict[str, Any] = {"active": False}


@post(INTROSPECT_PATH)
async def introspect(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        form = await read_form(request)
        # One read transaction for the client, the token and its user's claims.
        async with provider.read() as conn:
            client = await authenticate_client(
                provider,
                issuer,
                request,
                form,
                endpoint=issuer.endpoint(INTROSPECT_PATH),
                conn=conn,
            )
            check_introspecting_client(client)
            assert client is not None
            if not form.get("token"):
                raise InvalidRequest("token: required")
            found = await active_token(provider, instance_id, form["token"], conn)
            if found is None:
                answer = await refresh_introspection(provider, issuer, client, form["token"], conn)
            elif not is_audience(client, found):
                answer = INACTIVE
            else:
                answer = await introspection(provider, issuer, found, conn)
        return json_response(answer)
    except OAuthError as exc:
        return error_response(exc)


async def refresh_introspection(
    provider: Provider,
    issuer: Issuer,
    client: Client,
    token: str,
    conn: AsyncConnection | None = None,
) -> dict[str, Any]:
    """A refresh token is active to the client that holds it, while it is unused,
    unrevoked, unexpired and its user active; inactive to everyone else."""
    async with provider.read(conn) as c:
        record = await find_refresh_token(c, issuer.instance_id, token)
        if record is None or record.used or record.revoked or record.client_id != client.client_id:
            return INACTIVE
        expires = min(record.idle_expires_at, record.expires_at)
        user = await load_user(c, issuer.instance_id, record.user_id)
    if expires <= datetime.now(UTC) or user is None or user["state"] not in (ACTIVE, INITIAL):
        return INACTIVE
    body: dict[str, Any] = {"act": record.actor} if record.actor else {}
    return {
        **body,
        "active": True,
        "scope": " ".join(record.scopes),
        "client_id": record.client_id,
        "token_type": "refresh_token",
        "exp": int(expires.timestamp()),
        "sub": record.user_id,
        "iss": issuer.url,
        "auth_time": int(record.auth_time.timestamp()),
    }


def check_introspecting_client(client: Client | None) -> None:
    if client is None or client.auth_method == "none":
        raise InvalidClient("introspection needs an authenticated application")
    if client.is_machine:
        raise InvalidClient("introspection is for applications (API or OIDC apps)")


def is_audience(client: Client, token: ActiveToken) -> bool:
    return client.project_id in token.audience or client.client_id in token.audience


async def introspection(
    provider: Provider, issuer: Issuer, token: ActiveToken, conn: AsyncConnection | None = None
) -> dict[str, Any]:
    """The RFC 7662 answer for an active token, with the user's claims by its scopes."""
    async with provider.read(conn) as c:
        user = await load_user(c, issuer.instance_id, token.user_id)
        claims = await user_claims(c, issuer.instance_id, user, token.scopes) if user else {}
    if token.actor:
        # RFC 8693 §4.1: who acts for the subject (a token from an impersonation).
        claims["act"] = token.actor
    body = {
        **claims,
        "active": True,
        "scope": " ".join(token.scopes),
        "client_id": token.client_id,
        "token_type": "DPoP" if token.dpop_jkt else "Bearer",
        "exp": int(token.expires_at.timestamp()),
        "iat": int(token.created_at.timestamp()),
        "nbf": int(token.created_at.timestamp()),
        "sub": token.user_id,
        "aud": list(token.audience),
        "iss": issuer.url,
        "jti": token.token_id,
        "username": claims.get("preferred_username", token.username),
    }
    if token.dpop_jkt:
        # RFC 9449 §6.2: the key the token is bound to, for the resource server to check.
        body["cnf"] = {"jkt": token.dpop_jkt}
    return body
