"""The client credentials grant (RFC 6749 §4.4), for machine users, as in ZITADEL.

The client is a machine user (service account) authenticating with its
client secret (Basic or post) or one of its keys (`private_key_jwt`); the
token's subject is that user. Applications cannot use this grant: a token
needs a user behind it. The access token is opaque or a JWT per the user's
`access_token_type`; no ID token and no refresh token are issued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.plugins.oidc.claims import load_user, resource_owner_claims, role_claims
from donjon.plugins.oidc.client_auth import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    PRIVATE_KEY_JWT,
)
from donjon.plugins.oidc.errors import InvalidClient, UnauthorizedClient
from donjon.plugins.oidc.grants.base import Grant, token_response
from donjon.plugins.oidc.scopes import RESOURCE_OWNER, ROLES, grant_scope, split_scope
from donjon.plugins.oidc.tokens.issue import issue_access_token

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client


class ClientCredentialsGrant(Grant):
    GRANT_TYPE = "client_credentials"
    CLIENT_AUTH_METHODS = frozenset({CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT})

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assert client is not None
        if not client.is_machine:
            raise UnauthorizedClient(
                "client_credentials is for machine users (service accounts), not applications"
            )
        instance_id = self.issuer.instance_id
        async with self.provider.runtime.db.read() as conn:
            user = await load_user(conn, instance_id, client.user_id)
            if user is None:
                raise InvalidClient("client authentication failed")
            scope = await grant_scope(
                conn, instance_id, split_scope(form.get("scope")), user["resource_owner"]
            )
            extra = await jwt_claims(conn, instance_id, user, scope.scopes, scope.projects)
        issued = await issue_access_token(
            self.provider,
            self.issuer,
            user=user,
            client_id=client.client_id,
            grant_type=self.GRANT_TYPE,
            scope=scope,
            token_type=user["access_token_type"] or "bearer",
            auth_methods=[client.auth_method],
            extra_claims=extra,
            dpop_jkt=self.dpop_jkt,
        )
        return token_response(issued, scope)


async def jwt_claims(
    conn: Any,
    instance_id: str,
    user: dict[str, Any],
    scopes: tuple[str, ...],
    projects: tuple[str, ...],
) -> dict[str, Any]:
    """What a JWT access token asserts beyond RFC 9068's claims: roles and org, when asked."""
    if user["access_token_type"] != "jwt":
        return {}
    claims: dict[str, Any] = {}
    if ROLES in scopes:
        claims.update(await role_claims(conn, instance_id, user["id"], projects))
    if RESOURCE_OWNER in scopes:
        claims.update(await resource_owner_claims(conn, instance_id, user["resource_owner"]))
    return claims
