"""May this session finish this auth request? The checks a login must pass.

Each check raises a `ConnectError` naming the field at fault, as the
SessionService does, so the OIDCService can pass them on and the hosted
login can show them:

- the session exists, is live, not expired, and `session_token` is its
  current token (`permission_denied` otherwise);
- it authenticates its user: a checked user and a further factor;
- the user is active (or initial) in an active org;
- the project lets the user in: `authorization_required` needs an active
  authorization of the user on the project, `project_access_required` a user
  of the project's own org (donjon has no project grants yet);
- the scopes' org (`urn:zitadel:iam:org:id:{id}`,
  `urn:zitadel:iam:org:domain:primary:{domain}`) is the user's;
- `max_age`: the authentication is no older than that;
  `prompt=login`: the user authenticated after the request was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from donjon.core.api.connect import ConnectError
from donjon.core.identity import orgs, session_commands
from donjon.core.identity.authorizations import ACTIVE as AUTHORIZATION_ACTIVE
from donjon.core.identity.authorizations import authorizations_table
from donjon.core.identity.sessions import SessionState
from donjon.core.identity.users import ACTIVE as USER_ACTIVE
from donjon.core.identity.users import INITIAL as USER_INITIAL
from donjon.core.identity.users import users_table
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.errors import InvalidScope
from donjon.plugins.oidc.scopes import grant_scope

#: Session factor -> RFC 8176 authentication method reference.
AMR = {
    "password": "pwd",
    "webAuthN": "hwk",
    "intent": "fed",
    "totp": "otp",
    "otpSms": "sms",
    "otpEmail": "otp",
    "recoveryCode": "otp",
}


@dataclass(frozen=True, slots=True)
class Login:
    """What a finished login states: who, when, how."""

    session_id: str
    user_id: str
    user_org: str
    auth_time: datetime
    amr: list[str]


def denied(message: str) -> ConnectError:
    return ConnectError("failed_precondition", message)


async def session_login(
    runtime: Runtime, instance_id: str, session_id: str, session_token: str
) -> tuple[SessionState, Login]:
    """The session's login, when the session is live, its token current and it authenticates."""
    state = await session_commands.live_session(runtime, instance_id, session_id)
    if not state.token_matches(session_token or ""):
        raise ConnectError("permission_denied", "sessionToken: does not match the session")
    if state.expired():
        raise denied("sessionId: the session expired")
    factors = {name: at for name, at in state.factors.items() if name != "user"}
    if not state.user_id or "user" not in state.factors or not factors:
        raise denied("sessionId: the session has not authenticated a user")
    amr = sorted({AMR.get(name, name) for name in factors})
    if len(factors) > 1:
        amr.append("mfa")
    login = Login(state.id, state.user_id, state.user_org, max(factors.values()), amr)
    return state, login


async def check_user_may_log_in(runtime: Runtime, instance_id: str, login: Login) -> dict[str, Any]:
    """The user's row, when the user is active (or initial) in an active org."""
    u, o = users_table, orgs.orgs_table
    async with runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(u, o.c.state.label("org_state"))
                .join(o, (o.c.instance_id == u.c.instance_id) & (o.c.id == u.c.resource_owner))
                .where(u.c.instance_id == instance_id, u.c.id == login.user_id)
            )
        ).first()
    if row is None:
        raise denied("sessionId: the session's user no longer exists")
    if row.state not in (USER_ACTIVE, USER_INITIAL):
        raise denied(f"sessionId: the user is {row.state}")
    if row.org_state != orgs.ACTIVE:
        raise denied("sessionId: the user's organization is not active")
    return dict(row._mapping)


async def check_project_access(
    runtime: Runtime, instance_id: str, app: dict[str, Any], login: Login
) -> None:
    """The project's login rules (`authorization_required`, `project_access_required`)."""
    if app["project_access_required"] and login.user_org != app["resource_owner"]:
        raise denied("sessionId: the user's organization has no access to the project")
    if not app["project_authorization_required"]:
        return
    a = authorizations_table
    async with runtime.db.read() as conn:
        found = (
            await conn.execute(
                select(a.c.id).where(
                    a.c.instance_id == instance_id,
                    a.c.user_id == login.user_id,
                    a.c.project_id == app["project_id"],
                    a.c.state == AUTHORIZATION_ACTIVE,
                )
            )
        ).first()
    if found is None:
        raise denied("sessionId: the user is not authorized for the project")


async def check_org_scope(
    runtime: Runtime, instance_id: str, scopes: list[str], login: Login
) -> None:
    """Org scopes (`...:org:id:{id}`, `...:org:domain:primary:{domain}`) name the user's org."""
    async with runtime.db.read() as conn:
        try:
            await grant_scope(conn, instance_id, scopes, login.user_org)
        except InvalidScope as exc:
            raise denied(f"sessionId: {exc.description}") from None


def check_freshness(
    login: Login, *, max_age: int, prompt: list[str], requested_at: datetime
) -> None:
    now = datetime.now(UTC)
    # An authentication made after the request is fresh whatever max_age says
    # (max_age=0 means "log in again", as prompt=login).
    fresh_since = min(now - timedelta(seconds=max(max_age, 0)), requested_at)
    if max_age >= 0 and login.auth_time < fresh_since:
        raise denied("sessionId: the authentication is older than max_age")
    if "login" in prompt and login.auth_time < requested_at:
        raise denied("sessionId: prompt=login needs an authentication after the request")
