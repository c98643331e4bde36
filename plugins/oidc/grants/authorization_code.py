"""The authorization code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3) with PKCE (RFC 7636).

Checks, each refusing with `invalid_grant` (the code is not told apart from
a wrong one): the code is one of this instance's, issued to this client,
not expired (`CodeLifetime`), not used before; `redirect_uri` is the one of
the authorization request; the `code_verifier` answers its challenge
(`pkce.check_verifier`); the user may still log in. The client is an OIDC
app with the `authorization_code` grant, authenticating as registered (a
public client by its client id alone, which is why PKCE binds the code).

Single use (RFC 9700 §4.2.1): redeeming pushes `auth_request.code.exchanged`
with the auth request's expected sequence, in the same push as the tokens'
`oidc_session` events, so of two racing redemptions one fails. A code
presented again, or losing that race, revokes every token it gave
(`oidc_session.revoked`). A code requested with `dpop_jkt` (RFC 9449 §10) is
redeemed only with a DPoP proof of that key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from donjon.core import ids
from donjon.core.errors import ConcurrencyError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import apps, secrets
from donjon.core.identity.users import ACTIVE, INITIAL
from donjon.plugins.oidc.auth_request_events import (
    EXCHANGED,
    SUCCEEDED,
    AuthRequestCodeExchanged,
    AuthRequestState,
    auth_requests_table,
)
from donjon.plugins.oidc.claims import load_user
from donjon.plugins.oidc.dpop.binding import check_bound_key, refresh_token_binding
from donjon.plugins.oidc.errors import InvalidGrant, InvalidRequest, UnauthorizedClient
from donjon.plugins.oidc.grants.base import Grant
from donjon.plugins.oidc.login_tokens import LoginFacts, TokenSet, app_scope, login_token_set
from donjon.plugins.oidc.pkce import check_verifier
from donjon.plugins.oidc.scopes import OFFLINE_ACCESS
from donjon.plugins.oidc.tokens.events import AGGREGATE, OIDCSessionRevoked

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client

APP_METHODS = frozenset({"client_secret_basic", "client_secret_post", "private_key_jwt", "none"})


async def revoke_session(provider: Any, instance_id: str, session_id: str, reason: str) -> None:
    """Revoke every token of an `oidc_session` (no-op for an unknown one)."""
    if not session_id:
        return
    session = Aggregate(AGGREGATE, session_id, instance_id, "")
    await provider.runtime.store.push(
        AggregateChanges(session, [OIDCSessionRevoked(reason=reason)]), creator=""
    )


def check_app_client(client: Client, grant_type: str) -> None:
    if client.is_machine or client.app_kind != apps.OIDC:
        raise UnauthorizedClient(f"{grant_type} is for OIDC applications")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"the application may not use {grant_type}")


async def approved_login_tokens(
    grant: Grant, client: Client, row: dict[str, Any], facts: LoginFacts
) -> tuple[dict[str, Any], TokenSet]:
    """(user, tokens) for a login a person approved (`row`: client_id, user_id, scopes of an
    auth request or device authorization); invalid_grant when the app is no longer active or
    the user may no longer log in."""
    instance_id = grant.issuer.instance_id
    async with grant.provider.runtime.db.read() as conn:
        app = await apps.app_by_client_id(conn, instance_id, row["client_id"])
        user = await load_user(conn, instance_id, row["user_id"])
        if app is None or app["state"] != apps.ACTIVE or app["project_state"] != "active":
            raise InvalidGrant("the application is no longer active")
        if user is None or user["state"] not in (ACTIVE, INITIAL):
            raise InvalidGrant("the user may no longer log in")
        scope, refresh = await app_scope(conn, instance_id, app, user, list(row["scopes"]))
        tokens = await login_token_set(
            grant.provider,
            grant.issuer,
            conn,
            app=app,
            user=user,
            scope=scope,
            facts=facts,
            grant_type=grant.GRANT_TYPE,
            refresh=refresh,
            dpop_jkt=grant.dpop_jkt,
            refresh_dpop_jkt=refresh_token_binding(client, grant.dpop_jkt),
        )
    return user, tokens


class AuthorizationCodeGrant(Grant):
    GRANT_TYPE = "authorization_code"
    CLIENT_AUTH_METHODS = APP_METHODS

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assert client is not None
        check_app_client(client, self.GRANT_TYPE)
        code = form.get("code")
        if not code:
            raise InvalidRequest("code: required")
        instance_id = self.issuer.instance_id
        row = await self._code_row(code)
        if row is None or row["client_id"] != client.client_id:
            raise InvalidGrant("the code is invalid, expired or was used")
        if row["state"] == EXCHANGED:
            await revoke_session(self.provider, instance_id, row["oidc_session_id"], "code reused")
            raise InvalidGrant("the code is invalid, expired or was used")
        if row["state"] != SUCCEEDED or row["code_expires_at"] <= datetime.now(UTC):
            raise InvalidGrant("the code is invalid, expired or was used")
        if form.get("redirect_uri", "") != row["redirect_uri"]:
            raise InvalidGrant("redirect_uri: does not match the authorization request")
        check_verifier(row["code_challenge"], form.get("code_verifier"))
        check_bound_key(row["dpop_jkt"], self.dpop, "authorization code")
        return await self._exchange(row, client)

    async def _code_row(self, code: str) -> dict[str, Any] | None:
        if len(code) > 512:
            return None
        r = auth_requests_table
        async with self.provider.runtime.db.read() as conn:
            row = (
                await conn.execute(
                    select(r).where(
                        r.c.instance_id == self.issuer.instance_id,
                        r.c.code_digest == secrets.digest(code),
                    )
                )
            ).first()
        return dict(row._mapping) if row else None

    async def _exchange(self, row: dict[str, Any], client: Client) -> dict[str, Any]:
        instance_id = self.issuer.instance_id
        facts = LoginFacts(row["session_id"], row["auth_time"], list(row["amr"]), row["nonce"])
        user, tokens = await approved_login_tokens(self, client, row, facts)
        state = await AuthRequestState.load(self.provider.runtime.store, instance_id, row["id"])
        session_id = ids.new_id()
        exchanged = AuthRequestCodeExchanged(oidc_session_id=session_id)
        session = Aggregate(AGGREGATE, session_id, instance_id, user["resource_owner"])
        try:
            if state.state != SUCCEEDED:
                raise ConcurrencyError("the code was redeemed meanwhile")
            await self.provider.runtime.store.push(
                [
                    AggregateChanges(
                        state.aggregate(), [exchanged], expected_sequence=state.sequence
                    ),
                    AggregateChanges(session, tokens.events, expected_sequence=0),
                ],
                creator=user["id"],
            )
        except ConcurrencyError:
            fresh = await AuthRequestState.load(self.provider.runtime.store, instance_id, row["id"])
            await revoke_session(self.provider, instance_id, fresh.oidc_session_id, "code reused")
            raise InvalidGrant("the code is invalid, expired or was used") from None
        if OFFLINE_ACCESS not in tokens.scope.scopes:
            tokens.response.pop("refresh_token", None)
        return tokens.response
