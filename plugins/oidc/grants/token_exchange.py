"""The token exchange grant (RFC 8693, `urn:ietf:params:oauth:grant-type:token-exchange`).

An OIDC application with the grant (`OIDC_GRANT_TYPE_TOKEN_EXCHANGE`)
trades a `subject_token` for new tokens, as in ZITADEL:

- **exchange** (no actor): new tokens for the same user, with the same or
  a narrower audience and scopes;
- **impersonation** (an `actor_token`, or a subject given as a `jwt` or a
  `urn:zitadel:params:oauth:token-type:user_id`): tokens for the subject
  user that name the actor in `act` (RFC 8693 §4.1, nested for a chain).
  Only when the instance's security settings enable it and the actor holds
  an impersonator role (see `donjon.plugins.oidc.impersonation`); each one
  is recorded as `user.impersonated`.

Which tokens are accepted is in `donjon.plugins.oidc.exchange_tokens`.
`requested_token_type`: `access_token` (the default; opaque), `jwt` (a JWT
access token, RFC 9068), `id_token` (an ID token, returned as
`access_token` with `token_type: N_A`); `refresh_token` is refused, as in
ZITADEL. With `openid`, an access token comes with an ID token; with
`offline_access` (granted only when on the subject or actor token, and
only to an app with the refresh token grant), with a refresh token whose
family keeps the exchange's audience and actor (`tokens.refresh`).
With a DPoP proof the access token is DPoP-bound (RFC 9449); a DPoP-bound
subject or actor token needs a proof of its own key.

Narrowing, never widening (each refusal names its parameter):
- `scope`: every scope must be on the subject token or the actor token
  (none asked: the subject's, else the actor's). A subject that carries no
  scopes (ID token, JWT, user id) being impersonated may still get the
  subject's own claims scopes (`openid`, `profile`, `email`, `phone`,
  `address`, `urn:zitadel:iam:user:*`); every other scope (audiences,
  roles, orgs) must be on the actor token. `invalid_scope` otherwise.
- `audience` (space-separated): every value must be in the subject or
  actor token's audience (none asked: the subject's, else the actor's; when
  neither has one, as with a personal access token as actor, the client's
  own, as after a login); `invalid_target` otherwise. `resource` is not
  supported (`invalid_target`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from donjon.core import ids
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import apps
from donjon.plugins.oidc import impersonation
from donjon.plugins.oidc.dpop.binding import check_bound_key, refresh_token_binding
from donjon.plugins.oidc.errors import InvalidRequest, InvalidScope, OAuthError
from donjon.plugins.oidc.exchange_tokens import (
    ACCESS_TOKEN,
    ACTOR_ONLY,
    ACTOR_TYPES,
    ID_TOKEN,
    JWT,
    KNOWN,
    SUBJECT_TYPES,
    ExchangeToken,
    check_type,
    verify_token,
)
from donjon.plugins.oidc.grants.authorization_code import APP_METHODS, check_app_client
from donjon.plugins.oidc.grants.base import Grant
from donjon.plugins.oidc.login_tokens import LoginFacts, login_token_set
from donjon.plugins.oidc.scopes import (
    OFFLINE_ACCESS,
    OPENID,
    RESOURCE_OWNER,
    STANDARD,
    GrantedScope,
    grant_scope,
    split_scope,
)
from donjon.plugins.oidc.tokens.events import AGGREGATE, BEARER
from donjon.plugins.oidc.tokens.events import JWT as JWT_ACCESS_TOKEN

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client

#: RFC 8693 §2.2.1: the issued token is not an access token (an ID token).
NOT_APPLICABLE = "N_A"
REQUESTED_TYPES = (ACCESS_TOKEN, JWT, ID_TOKEN)
#: User claim scopes: what a scope-less subject's own data may be asked for.
USER_DATA_PREFIX = "urn:zitadel:iam:user:"


class InvalidTarget(OAuthError):
    """RFC 8693 §2.2.2: an audience or resource the server will not issue for."""

    error = "invalid_target"


def is_user_data_scope(scope: str) -> bool:
    return scope in STANDARD or scope == RESOURCE_OWNER or scope.startswith(USER_DATA_PREFIX)


def exchange_scopes(
    requested: list[str], subject: ExchangeToken, actor: ExchangeToken, *, impersonating: bool
) -> list[str]:
    """The requested scopes when the tokens allow them (see the module docstring)."""
    union = set(subject.scopes) | set(actor.scopes)
    relaxed = impersonating and not subject.scopes
    if not requested:
        requested = list(subject.scopes or actor.scopes)
    for scope in requested:
        if scope in union or (relaxed and is_user_data_scope(scope)):
            continue
        raise InvalidScope(f"scope: {scope} is not on the subject or actor token")
    return requested


def exchange_audience(
    requested: list[str], subject: ExchangeToken, actor: ExchangeToken
) -> list[str]:
    """The requested audience when the tokens allow it (see the module docstring)."""
    if not requested:
        return list(subject.audience or actor.audience)
    allowed = set(subject.audience) | set(actor.audience)
    for value in requested:
        if value not in allowed:
            raise InvalidTarget(
                f"audience: {value} is not an audience of the subject or actor token"
            )
    return requested


def actor_claim(issuer_url: str, actor: ExchangeToken) -> dict[str, Any]:
    """RFC 8693 §4.1 `act` naming the actor, with the actor's own actor nested."""
    act: dict[str, Any] = {"iss": issuer_url, "sub": actor.user_id}
    if actor.actor:
        act["act"] = actor.actor
    return act


class TokenExchangeGrant(Grant):
    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
    CLIENT_AUTH_METHODS = APP_METHODS
    #: The app setting's name for this grant.
    APP_GRANT: ClassVar[str] = "token_exchange"

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assert client is not None
        check_app_client(client, self.APP_GRANT)
        if form.get("resource"):
            raise InvalidTarget("resource: not supported (use audience)")
        requested_type = form.get("requested_token_type") or ACCESS_TOKEN
        if requested_type not in REQUESTED_TYPES:
            known = "a known type" if requested_type in KNOWN else "not a token type"
            raise InvalidRequest(
                f"requested_token_type: {requested_type} cannot be issued ({known}; ask for"
                f" {', '.join(REQUESTED_TYPES)})"
            )
        subject_type = form.get("subject_token_type", "")
        check_type("subject_token", form.get("subject_token", ""), subject_type, SUBJECT_TYPES)
        has_actor = bool(form.get("actor_token") or form.get("actor_token_type"))
        if subject_type in ACTOR_ONLY and not has_actor:
            raise InvalidRequest(f"subject_token_type: {subject_type} needs an actor_token")
        instance_id = self.issuer.instance_id
        db = self.provider.runtime.db
        if has_actor:
            check_type(
                "actor_token",
                form.get("actor_token", ""),
                form.get("actor_token_type", ""),
                ACTOR_TYPES,
            )
            async with db.read() as conn:
                await impersonation.check_policy(conn, instance_id)
            actor = await self._verify("actor_token", client, form)
            subject = await self._verify("subject_token", client, form)
            if subject.token_type == JWT and subject.signer not in (
                client.client_id,
                actor.user_id,
            ):
                raise InvalidRequest(
                    "subject_token: the JWT must be signed by the client or by the actor"
                )
            async with db.read() as conn:
                await impersonation.check_actor_may_impersonate(
                    conn, instance_id, actor.user_id, subject.user
                )
        else:
            subject = actor = await self._verify("subject_token", client, form)
        return await self._issue(client, form, requested_type, subject, actor, has_actor)

    async def _verify(self, param: str, client: Client, form: dict[str, str]) -> ExchangeToken:
        found = await verify_token(
            self.provider, self.issuer, client, param, form[param], form[f"{param}_type"]
        )
        # RFC 9449: a bound token is exchanged only by the holder of its key.
        check_bound_key(found.dpop_jkt, self.dpop, param)
        return found

    async def _issue(
        self,
        client: Client,
        form: dict[str, str],
        requested_type: str,
        subject: ExchangeToken,
        actor: ExchangeToken,
        impersonating: bool,
    ) -> dict[str, Any]:
        instance_id = self.issuer.instance_id
        requested = split_scope(form.get("scope"))
        scopes = exchange_scopes(requested, subject, actor, impersonating=impersonating)
        audience = exchange_audience(form.get("audience", "").split(), subject, actor)
        act = actor_claim(self.issuer.url, actor) if impersonating else subject.actor
        user = subject.user
        id_token_only = requested_type == ID_TOKEN
        async with self.provider.runtime.db.read() as conn:
            app = await apps.app_by_client_id(conn, instance_id, client.client_id)
            if app is None:
                raise InvalidRequest("the application is no longer active")
            granted = await grant_scope(conn, instance_id, scopes, user["resource_owner"])
            if id_token_only and OPENID not in granted.scopes:
                granted = GrantedScope((OPENID, *granted.scopes), granted.projects, granted.api)
            refresh = (
                not id_token_only
                and OFFLINE_ACCESS in scopes
                and "refresh_token" in (app["grant_types"] or [])
            )
            if refresh:
                granted = GrantedScope(
                    (*granted.scopes, OFFLINE_ACCESS), granted.projects, granted.api
                )
            if not audience:
                # Neither token has one (a personal access token acts): the app's own.
                own = GrantedScope((), (app["project_id"], *granted.projects), granted.api)
                audience = own.audience(client.client_id, instance_id)
            auth_time = actor.auth_time or datetime.now(UTC)
            facts = LoginFacts("", auth_time, list(actor.auth_methods))
            tokens = await login_token_set(
                self.provider,
                self.issuer,
                conn,
                app=app,
                user=user,
                scope=granted,
                facts=facts,
                grant_type=self.GRANT_TYPE,
                refresh=refresh,
                access_token=not id_token_only,
                token_type=JWT_ACCESS_TOKEN if requested_type == JWT else BEARER,
                audience=audience,
                actor=act,
                dpop_jkt=self.dpop_jkt,
                refresh_dpop_jkt=refresh_token_binding(client, self.dpop_jkt),
            )
        pushes: list[AggregateChanges] = []
        if tokens.events:
            session = Aggregate(AGGREGATE, ids.new_id(), instance_id, user["resource_owner"])
            pushes.append(AggregateChanges(session, tokens.events, expected_sequence=0))
        if impersonating:
            pushes.append(impersonation.impersonated(instance_id, user, client.client_id, act))
        if pushes:
            await self.provider.runtime.store.push(pushes, creator=actor.user_id)
        return self._response(tokens.response, requested_type, granted)

    def _response(
        self, issued: dict[str, Any], requested_type: str, granted: GrantedScope
    ) -> dict[str, Any]:
        if requested_type == ID_TOKEN:
            lifetime = self.provider.settings.IdTokenLifetime
            return {
                "access_token": issued["id_token"],
                "issued_token_type": ID_TOKEN,
                "token_type": NOT_APPLICABLE,
                "expires_in": int(lifetime.total_seconds()),
                "scope": granted.text,
            }
        body: dict[str, Any] = {
            "access_token": issued["access_token"],
            "issued_token_type": requested_type,
            "token_type": issued["token_type"],
            "expires_in": issued["expires_in"],
            "scope": granted.text,
        }
        for optional in ("id_token", "refresh_token"):
            if optional in issued:
                body[optional] = issued[optional]
        return body
