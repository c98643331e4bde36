"""The tokens of a user's login at an app: access token, ID token, refresh token.

Shared by the flows that follow a login: the authorization code grant, the
refresh token grant and the implicit flow. What goes in them follows the
app's settings, as in ZITADEL:

- audience: the client id, the app's project, the projects of
  `urn:zitadel:iam:org:project:id:{id}:aud` scopes (and the management API
  for `...:id:zitadel:aud`);
- access token: opaque or JWT per the app's `access_token_type`; a JWT has
  role claims when `access_token_role_assertion` is on and roles are asked
  for (the roles scope, or the project's `project_role_assertion`);
- ID token (with `openid`): `iss`, `sub`, `aud`, `azp`, `exp`, `iat`,
  `auth_time`, `nonce`, `amr`, `acr`, `at_hash`, `sid`; the user's claims
  by scope when `id_token_userinfo_assertion` is on; role claims when
  `id_token_role_assertion` is on and roles are asked for;
- refresh token: with `offline_access`, when the app has the `refresh_token`
  grant (see `tokens.refresh`).

Token exchange (RFC 8693) reuses this for the tokens it issues, choosing the
access token's type and audience itself and naming the actor (`act`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core import ids
from donjon.core.events import Event
from donjon.core.identity import secrets
from donjon.core.identity.sessions import format_time
from donjon.plugins.oidc.claims import resource_owner_claims, role_claims, user_claims
from donjon.plugins.oidc.scopes import (
    OFFLINE_ACCESS,
    OPENID,
    RESOURCE_OWNER,
    ROLES,
    GrantedScope,
    grant_scope,
)
from donjon.plugins.oidc.tokens.events import JWT, AccessTokenAdded
from donjon.plugins.oidc.tokens.issue import build_access_token, issue_id_token
from donjon.plugins.oidc.tokens.refresh import RefreshTokenAdded

if TYPE_CHECKING:
    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider

#: The `acr` donjon states: no assurance level is claimed (OIDC Core §2).
ACR = "0"


@dataclass(frozen=True, slots=True)
class LoginFacts:
    """Who logged in, when and how (from the auth request or the refresh family)."""

    login_session_id: str
    auth_time: datetime
    amr: list[str]
    nonce: str = ""


@dataclass
class TokenSet:
    """The token response and the events to push on the `oidc_session` aggregate."""

    response: dict[str, Any]
    events: list[Event]
    scope: GrantedScope


def wants_roles(app: dict[str, Any], scopes: tuple[str, ...]) -> bool:
    return ROLES in scopes or bool(app.get("project_role_assertion"))


async def app_scope(
    conn: AsyncConnection,
    instance_id: str,
    app: dict[str, Any],
    user: dict[str, Any],
    requested: list[str],
) -> tuple[GrantedScope, bool]:
    """The granted scope (the app's project in the audience) and whether a refresh
    token is due (`offline_access` asked for and the app has the refresh grant)."""
    scope = await grant_scope(conn, instance_id, requested, user["resource_owner"])
    refresh = OFFLINE_ACCESS in requested and "refresh_token" in (app["grant_types"] or [])
    scopes = (*scope.scopes, OFFLINE_ACCESS) if refresh else scope.scopes
    projects = tuple(dict.fromkeys((app["project_id"], *scope.projects)))
    return GrantedScope(scopes, projects, scope.api), refresh


async def id_token_claims(
    conn: AsyncConnection,
    instance_id: str,
    app: dict[str, Any],
    user: dict[str, Any],
    scope: GrantedScope,
) -> dict[str, Any]:
    """What an ID token for `user` at `app` asserts beyond the protocol's claims."""
    claims: dict[str, Any] = {"sub": user["id"]}
    if app["id_token_userinfo_assertion"]:
        claims = await user_claims(conn, instance_id, user, scope.scopes)
    if wants_roles(app, scope.scopes) and app["id_token_role_assertion"]:
        claims.update(await role_claims(conn, instance_id, user["id"], scope.projects))
    claims["acr"] = ACR
    return claims


async def login_token_set(
    provider: Provider,
    issuer: Issuer,
    conn: AsyncConnection,
    *,
    app: dict[str, Any],
    user: dict[str, Any],
    scope: GrantedScope,
    facts: LoginFacts,
    grant_type: str,
    refresh: bool,
    family_expiration: datetime | None = None,
    replaces: str = "",
    first: bool = True,
    access_token: bool = True,
    token_type: str | None = None,
    audience: list[str] | None = None,
    actor: dict[str, Any] | None = None,
    dpop_jkt: str = "",
    refresh_dpop_jkt: str = "",
) -> TokenSet:
    """The tokens for `user` at `app` (see the module docstring). `first` makes the
    access token's event the session's `oidc_session.added`; later ones (refresh)
    are `oidc_session.access_token.added`. `token_type` (bearer or jwt) and
    `audience` replace the app's type and the scope's audience; `actor` is the
    RFC 8693 `act` claim of every token issued (token exchange). `dpop_jkt` binds
    the access token to a DPoP key (`token_type: DPoP`), `refresh_dpop_jkt` the
    refresh token (RFC 9449 §5)."""
    instance_id = issuer.instance_id
    client_id = app["client_id"]
    events: list[Event] = []
    response: dict[str, Any] = {"token_type": "Bearer"}
    custom_audience = audience is not None
    if audience is None:
        audience = scope.audience(client_id, instance_id)
    token_type = token_type or app["access_token_type"]
    token = ""
    if access_token:
        extra: dict[str, Any] = {}
        if token_type == JWT:
            if wants_roles(app, scope.scopes) and app["access_token_role_assertion"]:
                extra.update(await role_claims(conn, instance_id, user["id"], scope.projects))
            if RESOURCE_OWNER in scope.scopes:
                extra.update(await resource_owner_claims(conn, instance_id, user["resource_owner"]))
        issued, added = await build_access_token(
            provider,
            issuer,
            user=user,
            client_id=client_id,
            grant_type=grant_type,
            scope=scope,
            token_type=token_type,
            auth_methods=list(facts.amr),
            extra_claims=extra,
            audience=audience,
            actor=actor,
            dpop_jkt=dpop_jkt,
        )
        response["token_type"] = issued.scheme
        events.append(added if first else AccessTokenAdded(**asdict(added)))
        token = issued.access_token
        response.update({"access_token": token, "expires_in": issued.expires_in})
    if OPENID in scope.scopes:
        claims = await id_token_claims(conn, instance_id, app, user, scope)
        if actor:
            claims["act"] = actor
        response["id_token"] = await issue_id_token(
            provider,
            issuer,
            user_claims=claims,
            client_id=client_id,
            audience=audience,
            auth_time=int(facts.auth_time.timestamp()),
            nonce=facts.nonce,
            amr=list(facts.amr),
            access_token=token,
            sid=facts.login_session_id,
        )
    if refresh:
        settings = provider.settings
        now = datetime.now(UTC)
        absolute = family_expiration or now + settings.RefreshTokenLifetime
        idle = min(now + settings.RefreshTokenIdleLifetime, absolute)
        refresh_token = secrets.new_secret()
        events.append(
            RefreshTokenAdded(
                token_id=ids.new_id(),
                token_digest=secrets.digest(refresh_token),
                user_id=user["id"],
                client_id=client_id,
                idle_expiration=format_time(idle),
                expiration=format_time(absolute),
                auth_time=format_time(facts.auth_time),
                scopes=list(scope.scopes),
                projects=list(scope.projects),
                amr=list(facts.amr),
                login_session_id=facts.login_session_id,
                replaces=replaces,
                audience=list(audience) if custom_audience else [],
                actor=dict(actor or {}),
                dpop_jkt=refresh_dpop_jkt,
            )
        )
        response["refresh_token"] = refresh_token
    response["scope"] = scope.text
    return TokenSet(response, events, scope)
