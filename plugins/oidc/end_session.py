"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the checks.

- `id_token_hint`, when sent, must be an ID token this instance signed (its
  `kid` one of the instance's keys, verified with that key's algorithm; an
  expired one is fine, as the spec allows) for this issuer. It names the
  client (`aud`/`azp`), the user (`sub`) and the login session (`sid`).
- `client_id`, when sent with a hint, must be one of the hint's audiences.
- `post_logout_redirect_uri` needs the client (by `client_id` or the hint)
  and must be one of the app's registered `post_logout_redirect_uris`,
  exactly; otherwise the logout still happens but nothing is redirected
  (an open redirector would help phishing).

What it does: the login session of `sid` is terminated
(`session_commands.terminate_session`: its token stops working), and the
refresh token families that came from that login are revoked. Without a
hint, nothing says which session to end: the endpoint hands the browser to
the hosted login's logout page (`/ui/login/logout` with `client_id`, the
checked `post_logout_redirect_uri` and `state`), where the person chooses
which of the browser's sessions to end; that page checks the URI again
(`post_logout_uri_allowed`) and ends each chosen session with `end_login`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select

from donjon.core.api.connect import ConnectError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import apps, session_commands
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.authorize_request import NotRedirectable
from donjon.plugins.oidc.issuer import Issuer
from donjon.plugins.oidc.keys.generate import public_key_of
from donjon.plugins.oidc.provider import Provider
from donjon.plugins.oidc.tokens.events import AGGREGATE, OIDCSessionRevoked
from donjon.plugins.oidc.tokens.refresh import refresh_tokens_table


@dataclass(frozen=True, slots=True)
class Logout:
    user_id: str
    login_session_id: str
    #: Where to send the browser afterwards (checked), or "".
    redirect_uri: str
    state: str
    client_id: str = ""


async def hint_claims(provider: Provider, issuer: Issuer, hint: str) -> dict[str, Any]:
    """The claims of an ID token this instance issued (expiry not checked)."""
    try:
        header = jwt.get_unverified_header(hint)
    except jwt.PyJWTError:
        raise NotRedirectable("id_token_hint: not a JWT") from None
    kid = header.get("kid")
    key = (
        await provider.keys.verification_key(issuer.instance_id, kid)
        if isinstance(kid, str)
        else None
    )
    if key is None or header.get("alg") != key.alg:
        raise NotRedirectable("id_token_hint: not an ID token of this issuer")
    try:
        claims: dict[str, Any] = jwt.decode(
            hint,
            key=public_key_of(key.public_jwk),  # type: ignore[arg-type]
            algorithms=[key.alg],
            issuer=issuer.url,
            options={"verify_aud": False, "verify_exp": False, "require": ["sub", "aud"]},
        )
    except jwt.PyJWTError:
        raise NotRedirectable("id_token_hint: not an ID token of this issuer") from None
    return claims


def hint_audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]


async def check_logout(provider: Provider, issuer: Issuer, params: dict[str, str]) -> Logout:
    """The logout the parameters ask for; NotRedirectable for a bad hint, client or URI."""
    claims: dict[str, Any] = {}
    client_id = params.get("client_id", "")
    if params.get("id_token_hint"):
        claims = await hint_claims(provider, issuer, params["id_token_hint"])
        audiences = hint_audiences(claims)
        if client_id and client_id not in audiences:
            raise NotRedirectable("client_id: is not an audience of id_token_hint")
        client_id = client_id or claims.get("azp") or (audiences[0] if audiences else "")
    redirect_uri = params.get("post_logout_redirect_uri", "")
    if redirect_uri:
        if not client_id:
            raise NotRedirectable("post_logout_redirect_uri: needs client_id or id_token_hint")
        await check_post_logout_uri(provider.runtime, issuer.instance_id, client_id, redirect_uri)
    sid = claims.get("sid")
    return Logout(
        user_id=str(claims.get("sub", "")),
        login_session_id=sid if isinstance(sid, str) else "",
        redirect_uri=redirect_uri,
        state=params.get("state", "")[:2048],
        client_id=client_id,
    )


async def check_post_logout_uri(
    runtime: Runtime, instance_id: str, client_id: str, redirect_uri: str
) -> None:
    """NotRedirectable unless `redirect_uri` is one of the OIDC app's post-logout URIs."""
    async with runtime.db.read() as conn:
        app = await apps.app_by_client_id(conn, instance_id, client_id)
    if app is None or app["type"] != apps.OIDC:
        raise NotRedirectable("client_id: no OIDC application has this client id")
    if redirect_uri not in (app["post_logout_redirect_uris"] or []):
        raise NotRedirectable("post_logout_redirect_uri: not registered for this application")


async def post_logout_uri_allowed(
    runtime: Runtime, instance_id: str, client_id: str, redirect_uri: str
) -> bool:
    """Whether a login may send the browser to `redirect_uri` after a logout for the client."""
    try:
        await check_post_logout_uri(runtime, instance_id, client_id, redirect_uri)
    except NotRedirectable:
        return False
    return True


async def end_login(runtime: Runtime, instance_id: str, logout: Logout) -> None:
    """Terminate the login session and revoke the refresh token families it started."""
    if not logout.login_session_id:
        return
    try:
        state = await session_commands.live_session(runtime, instance_id, logout.login_session_id)
    except ConnectError:
        state = None  # already ended
    if state is not None and state.user_id == logout.user_id:
        await session_commands.terminate_session(runtime, state, creator=logout.user_id)
    t = refresh_tokens_table
    async with runtime.db.read() as conn:
        families = (
            (
                await conn.execute(
                    select(t.c.session_id)
                    .where(
                        t.c.instance_id == instance_id,
                        t.c.login_session_id == logout.login_session_id,
                        t.c.user_id == logout.user_id,
                        t.c.revoked.is_(False),
                    )
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
    if families:
        await runtime.store.push(
            [
                AggregateChanges(
                    Aggregate(AGGREGATE, family, instance_id, ""),
                    [OIDCSessionRevoked(reason="logout")],
                )
                for family in families
            ],
            creator=logout.user_id,
        )
