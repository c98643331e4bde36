"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

A refresh token is good once: using it gives a new access token, a new
refresh token (and, with `openid`, a new ID token with the login's
`auth_time` and `amr`), in one push that marks the old one used and claims
it unique. Presenting a used one again, or losing a race for it, revokes the
whole family (`oidc_session.revoked`): the attacker's and the client's tokens
alike. The token must belong to the authenticated client, not be revoked,
and be within its idle expiry (`RefreshTokenIdleLifetime` since it was
issued) and the family's absolute one (`RefreshTokenLifetime` since the
login). A `scope` parameter may narrow the scopes, never widen them. A
family from a token exchange keeps its audience and its actor (`act`).
A refresh token bound to a DPoP key (a public client's, RFC 9449 §5) is used
only with a proof of that key: without one `invalid_dpop_proof`, with
another key `invalid_grant`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from donjon.core.errors import UniqueConstraintError
from donjon.core.events import AddUnique, Aggregate, AggregateChanges
from donjon.core.identity import apps
from donjon.core.identity.users import ACTIVE, INITIAL
from donjon.plugins.oidc.claims import load_user
from donjon.plugins.oidc.dpop.binding import check_bound_key, refresh_token_binding
from donjon.plugins.oidc.errors import InvalidGrant, InvalidRequest, InvalidScope
from donjon.plugins.oidc.grants.authorization_code import (
    APP_METHODS,
    check_app_client,
    revoke_session,
)
from donjon.plugins.oidc.grants.base import Grant
from donjon.plugins.oidc.login_tokens import LoginFacts, login_token_set
from donjon.plugins.oidc.scopes import API_AUDIENCE_SCOPE, GrantedScope, split_scope
from donjon.plugins.oidc.tokens.events import AGGREGATE
from donjon.plugins.oidc.tokens.refresh import USED_REFRESH_TOKEN, find_refresh_token

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client

INVALID = "the refresh token is invalid, expired or revoked"


def narrowed(granted: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """The family's scopes, or the subset `requested` names (RFC 6749 §6)."""
    if not requested:
        return granted
    wanted = split_scope(requested)
    extra = [s for s in wanted if s not in granted]
    if extra:
        raise InvalidScope(f"scope: {' '.join(extra)} was not granted to this refresh token")
    return tuple(s for s in granted if s in wanted)


class RefreshTokenGrant(Grant):
    GRANT_TYPE = "refresh_token"
    CLIENT_AUTH_METHODS = APP_METHODS

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assert client is not None
        check_app_client(client, self.GRANT_TYPE)
        token = form.get("refresh_token")
        if not token:
            raise InvalidRequest("refresh_token: required")
        instance_id = self.issuer.instance_id
        runtime = self.provider.runtime
        async with runtime.db.read() as conn:
            record = await find_refresh_token(conn, instance_id, token)
            if record is None or record.client_id != client.client_id or record.revoked:
                raise InvalidGrant(INVALID)
            if record.used:
                await revoke_session(self.provider, instance_id, record.session_id, "reused")
                raise InvalidGrant(INVALID)
            now = datetime.now(UTC)
            if record.idle_expires_at <= now or record.expires_at <= now:
                raise InvalidGrant(INVALID)
            check_bound_key(record.dpop_jkt, self.dpop, "refresh token")
            app = await apps.app_by_client_id(conn, instance_id, client.client_id)
            user = await load_user(conn, instance_id, record.user_id)
            if app is None or user is None or user["state"] not in (ACTIVE, INITIAL):
                raise InvalidGrant(INVALID)
            scopes = narrowed(record.scopes, form.get("scope"))
            scope = GrantedScope(scopes, record.projects, API_AUDIENCE_SCOPE in scopes)
            facts = LoginFacts(record.login_session_id, record.auth_time, list(record.amr))
            tokens = await login_token_set(
                self.provider,
                self.issuer,
                conn,
                app=app,
                user=user,
                scope=scope,
                facts=facts,
                grant_type=self.GRANT_TYPE,
                refresh=True,
                family_expiration=record.expires_at,
                replaces=record.token_id,
                first=False,
                audience=list(record.audience) or None,
                actor=record.actor,
                dpop_jkt=self.dpop_jkt,
                refresh_dpop_jkt=record.dpop_jkt or refresh_token_binding(client, self.dpop_jkt),
            )
        session = Aggregate(AGGREGATE, record.session_id, instance_id, user["resource_owner"])
        used = AddUnique(USED_REFRESH_TOKEN, record.token_id, "the refresh token was used")
        try:
            await runtime.store.push(
                AggregateChanges(session, tokens.events, unique=[used]), creator=user["id"]
            )
        except UniqueConstraintError:
            await revoke_session(self.provider, instance_id, record.session_id, "reused")
            raise InvalidGrant(INVALID) from None
        return tokens.response
