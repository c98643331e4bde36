"""Token revocation (RFC 7009): `POST /oauth/v2/revoke`.

The client authenticates (a public app by its client id). A token it was
issued is revoked (`oidc_session.access_token.revoked`) and from then on
neither introspects active nor authenticates anything. A refresh token's
revocation revokes its whole family (`oidc_session.revoked`). Unknown, expired or
already revoked tokens get the same empty 200 (RFC 7009 §2.2); a token
issued to another client is refused (`invalid_request`), as
node-oidc-provider does. `token_type_hint` is accepted and not needed.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency

from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.client_auth import authenticate_client
from donjon.plugins.oidc.clients import Client
from donjon.plugins.oidc.errors import (
    NO_STORE,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    error_response,
)
from donjon.plugins.oidc.forms import read_form
from donjon.plugins.oidc.issuer import REVOKE_PATH, issuer_of
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.tokens.events import AGGREGATE, AccessTokenRevoked, OIDCSessionRevoked
from donjon.plugins.oidc.tokens.lookup import ActiveToken, active_token
from donjon.plugins.oidc.tokens.refresh import find_refresh_token


@post(REVOKE_PATH)
async def revoke(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    provider = provider_of(runtime)
    issuer = issuer_of(request, runtime.settings, instance_id)
    try:
        form = await read_form(request)
        client = await authenticate_client(
            provider, issuer, request, form, endpoint=issuer.endpoint(REVOKE_PATH)
        )
        if client is None:
            raise InvalidClient("revocation needs client authentication (or a public client_id)")
        if not form.get("token"):
            raise InvalidRequest("token: required")
        found = await active_token(provider, instance_id, form["token"])
        if found is not None:
            if not issued_to(client, found):
                raise InvalidRequest("this token was not issued to this client")
            revoked = AccessTokenRevoked(token_id=found.token_id, client_id=client.client_id)
            session = Aggregate(AGGREGATE, found.session_id, instance_id, found.org_id)
            await runtime.store.push(AggregateChanges(session, [revoked]), creator=found.user_id)
        else:
            await revoke_refresh_token(runtime, instance_id, client, form["token"])
    except OAuthError as exc:
        return error_response(exc)
    return Response(None, status_code=200, headers=NO_STORE)


async def revoke_refresh_token(
    runtime: Runtime, instance_id: str, client: Client, token: str
) -> None:
    """Revoking a refresh token revokes its family (RFC 7009 §2.1: and the access
    tokens of the same grant)."""
    async with runtime.db.read() as conn:
        record = await find_refresh_token(conn, instance_id, token)
    if record is None or record.revoked:
        return
    if record.client_id != client.client_id:
        raise InvalidRequest("this token was not issued to this client")
    session = Aggregate(AGGREGATE, record.session_id, instance_id, "")
    await runtime.store.push(
        AggregateChanges(session, [OIDCSessionRevoked(reason="revoked")]), creator=record.user_id
    )


def issued_to(client: Client, token: ActiveToken) -> bool:
    """Whether `client` got `token` (a machine user owns the tokens issued for itself)."""
    if client.client_id == token.client_id:
        return True
    return client.is_machine and client.user_id == token.user_id
