"""The JWT profile grant (RFC 7523 §2.1, `urn:ietf:params:oauth:grant-type:jwt-bearer`).

A machine user signs an assertion with one of its keys (ZITADEL's key file:
`iss` = `sub` = the user id, `kid` = the key id, `aud` = the issuer) and
gets an access token for itself, plus an ID token when it asks for `openid`.
No client authentication is needed (the assertion is the credential); a
client that does authenticate becomes the token's `client_id`. The
assertion passes every check of `donjon.plugins.oidc.assertion`; its `jti`,
when present, is single-use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.plugins.oidc import replay
from donjon.plugins.oidc.assertion import (
    AssertionRules,
    load_public_pem,
    unverified_parts,
    verify_assertion,
)
from donjon.plugins.oidc.claims import user_claims
from donjon.plugins.oidc.client_auth import ALL_METHODS
from donjon.plugins.oidc.clients import find_machine, machine_is_usable, usable_machine_key
from donjon.plugins.oidc.errors import InvalidGrant, InvalidRequest
from donjon.plugins.oidc.grants.base import Grant, token_response
from donjon.plugins.oidc.grants.client_credentials import jwt_claims
from donjon.plugins.oidc.scopes import OPENID, grant_scope, split_scope
from donjon.plugins.oidc.tokens.issue import issue_access_token, issue_id_token

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client

JWT_PROFILE = "jwt_profile"


class JWTBearerGrant(Grant):
    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    CLIENT_AUTH_METHODS = frozenset(ALL_METHODS)
    CLIENT_REQUIRED = False

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assertion = form.get("assertion")
        if not assertion:
            raise InvalidRequest("assertion: required (a JWT signed with a machine user's key)")
        user = await self._verified_subject(assertion)
        instance_id = self.issuer.instance_id
        async with self.provider.runtime.db.read() as conn:
            scope = await grant_scope(
                conn, instance_id, split_scope(form.get("scope")), user["resource_owner"]
            )
            extra = await jwt_claims(conn, instance_id, user, scope.scopes, scope.projects)
            claims = (
                await user_claims(conn, instance_id, user, scope.scopes)
                if OPENID in scope.scopes
                else None
            )
        client_id = client.client_id if client is not None else user["id"]
        issued = await issue_access_token(
            self.provider,
            self.issuer,
            user=user,
            client_id=client_id,
            grant_type=self.GRANT_TYPE,
            scope=scope,
            token_type=user["access_token_type"] or "bearer",
            auth_methods=[JWT_PROFILE],
            extra_claims=extra,
            dpop_jkt=self.dpop_jkt,
        )
        id_token = None
        if claims is not None:
            id_token = await issue_id_token(
                self.provider,
                self.issuer,
                user_claims=claims,
                client_id=client_id,
                audience=issued.audience,
            )
        return token_response(issued, scope, id_token)

    async def _verified_subject(self, assertion: str) -> dict[str, Any]:
        """The machine user whose key signed a valid assertion; InvalidGrant otherwise."""
        header, unverified = unverified_parts(assertion, InvalidGrant)
        user_id, key_id = unverified.get("sub"), header.get("kid")
        if not isinstance(user_id, str) or not user_id:
            raise InvalidGrant("the assertion needs sub (the machine user's id)")
        if not isinstance(key_id, str) or not key_id:
            raise InvalidGrant("the assertion needs kid (the key id) in its header")
        instance_id = self.issuer.instance_id
        async with self.provider.runtime.db.read() as conn:
            machine = await find_machine(conn, instance_id, user_id, by_id=True)
            key = (
                await usable_machine_key(conn, instance_id, machine["id"], key_id)
                if machine is not None and machine_is_usable(machine)
                else None
            )
        user = machine
        if user is None or key is None or user["id"] != user_id:
            raise InvalidGrant("no active machine user has this key")
        settings = self.provider.settings
        rules = AssertionRules(
            audiences=frozenset({self.issuer.url, self.issuer.token_endpoint}),
            max_lifetime=settings.MaxAssertionLifetime,
            skew=settings.ClockSkew,
            require_jti=False,
        )
        _claims, expires, jti = verify_assertion(
            assertion, header, load_public_pem(key.public_key), user_id, rules, InvalidGrant
        )
        if jti is not None and not await replay.first_use(
            self.provider.runtime.db, instance_id, user_id, jti, expires
        ):
            raise InvalidGrant("the assertion was used before (jti)")
        return user
