"""Auth requests: storing what `/oauth/v2/authorize` accepted, and finishing it.

The interface the login UIs use (the hosted login in-process, a custom
login through the OIDCService):

- `get_auth_request(conn, instance_id, id)`: the pending request's row
  (None when unknown, expired, or already finished), with `client_id`,
  `app_name`, `scopes`, `prompt`, `login_hint`, `redirect_uri`, `oauth_state`,
  `max_age`, `ui_locales`, `created_at`, `expires_at`...;
- `finish_auth_request(runtime, instance_id, id, session_id, session_token)`:
  the session logs the user in (see `login_checks`); returns the URL to send
  the browser to: the redirect URI with the single-use `code` (or, for the
  implicit flow, the tokens in the fragment), `state` and `iss` (RFC 9207);
- `fail_auth_request(runtime, instance_id, id, error, description)`: the
  login gives up (`access_denied`, `login_required`, ...); returns the
  redirect URI with `error`, `error_description`, `state` and `iss`.

Both raise the SessionService's `ConnectError`s: `not_found` for an unknown
(or another instance's) request, `failed_precondition` for one that is
expired or already finished, or a login the rules refuse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core import ids
from donjon.core.api.connect import ConnectError
from donjon.core.errors import ConcurrencyError
from donjon.core.events import AggregateChanges
from donjon.core.identity import apps, secrets
from donjon.core.identity.sessions import format_time
from donjon.core.runtime import Runtime
from donjon.plugins.oidc import login_checks
from donjon.plugins.oidc.auth_request_events import (
    ADDED,
    AuthRequestAdded,
    AuthRequestFailed,
    AuthRequestState,
    AuthRequestSucceeded,
    auth_requests_table,
)
from donjon.plugins.oidc.authorize_request import CODE, AuthorizeRequest
from donjon.plugins.oidc.provider import provider_of

LOGIN_PATH = "/ui/login/login"
#: RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6 error codes a login may answer with.
LOGIN_ERRORS = (
    "access_denied",
    "login_required",
    "interaction_required",
    "account_selection_required",
    "consent_required",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
)


def login_url(issuer_url: str, auth_request_id: str, app: dict[str, Any] | None = None) -> str:
    """Where the browser logs in for an auth request: the hosted login, or the app's
    own login (ZITADEL's `loginVersion.loginV2.baseUri`: `{baseUri}/login?authRequest=`)."""
    query = urlencode({"authRequest": auth_request_id})
    if app is not None and app.get("login_version") == 2 and app.get("login_base_uri"):
        return f"{app['login_base_uri'].rstrip('/')}/login?{query}"
    return f"{issuer_url}{LOGIN_PATH}?{query}"


def redirect_with(redirect_uri: str, mode: str, params: dict[str, str]) -> str:
    """`redirect_uri` with `params` added to its query (kept as registered) or fragment."""
    values = {k: v for k, v in params.items() if v}
    parts = urlsplit(redirect_uri)
    if mode == "fragment":
        return urlunsplit(parts._replace(fragment=urlencode(values)))
    query = f"{parts.query}&{urlencode(values)}" if parts.query else urlencode(values)
    return urlunsplit(parts._replace(query=query))


def error_redirect(
    redirect_uri: str, mode: str, state: str, issuer_url: str, error: str, description: str
) -> str:
    return redirect_with(
        redirect_uri,
        mode,
        {"error": error, "error_description": description, "state": state, "iss": issuer_url},
    )


async def add_auth_request(
    runtime: Runtime,
    instance_id: str,
    issuer_url: str,
    request: AuthorizeRequest,
    *,
    pushed: bool = False,
) -> str:
    """Store a checked request (`auth_request.added`); its id."""
    settings = provider_of(runtime).settings
    auth_request_id = ids.new_id()
    app = request.app
    event = AuthRequestAdded(
        client_id=app["client_id"],
        app_id=app["id"],
        project_id=app["project_id"],
        redirect_uri=request.redirect.redirect_uri,
        response_type=request.response_type,
        response_mode=request.redirect.response_mode,
        issuer=issuer_url,
        expiration=format_time(datetime.now(UTC) + settings.AuthRequestLifetime),
        scopes=request.scopes,
        state=request.redirect.state,
        nonce=request.nonce,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        prompt=request.prompt,
        max_age=request.max_age,
        login_hint=request.login_hint,
        ui_locales=request.ui_locales,
        pushed=pushed,
        dpop_jkt=request.dpop_jkt,
    )
    state = AuthRequestState(instance_id, auth_request_id)
    await runtime.store.push(
        AggregateChanges(state.aggregate(app["resource_owner"]), [event], expected_sequence=0),
        creator="",
    )
    return auth_request_id


async def get_auth_request(
    conn: AsyncConnection, instance_id: str, auth_request_id: str
) -> dict[str, Any] | None:
    """The pending auth request (see the module docstring), or None."""
    if not auth_request_id:
        return None
    r, a = auth_requests_table, apps.apps_table
    row = (
        await conn.execute(
            select(r, a.c.name.label("app_name"))
            .outerjoin(a, (a.c.instance_id == r.c.instance_id) & (a.c.id == r.c.app_id))
            .where(r.c.instance_id == instance_id, r.c.id == auth_request_id)
        )
    ).first()
    if row is None or row.state != ADDED or row.expires_at <= datetime.now(UTC):
        return None
    return dict(row._mapping)


async def _pending(runtime: Runtime, instance_id: str, auth_request_id: str) -> AuthRequestState:
    if not auth_request_id:
        raise ConnectError("invalid_argument", "authRequestId: is required")
    state = await AuthRequestState.load(runtime.store, instance_id, auth_request_id)
    if not state.exists:
        raise ConnectError("not_found", "authRequestId: auth request not found")
    if state.state != ADDED:
        raise ConnectError("failed_precondition", "authRequestId: the auth request is finished")
    if state.expiration is not None and state.expiration <= datetime.now(UTC):
        raise ConnectError("failed_precondition", "authRequestId: the auth request expired")
    return state


async def _push_once(runtime: Runtime, changes: AggregateChanges, *, creator: str) -> None:
    """Push the request's end; another login that finished it first wins."""
    try:
        await runtime.store.push(changes, creator=creator)
    except ConcurrencyError:
        raise ConnectError(
            "failed_precondition", "authRequestId: the auth request is finished"
        ) from None


async def finish_auth_request(
    runtime: Runtime,
    instance_id: str,
    auth_request_id: str,
    session_id: str,
    session_token: str,
) -> str:
    """Log the session's user in to the request's client; the callback URL."""
    pending = await _pending(runtime, instance_id, auth_request_id)
    req = pending.request
    _session, login = await login_checks.session_login(
        runtime, instance_id, session_id, session_token
    )
    await login_checks.check_user_may_log_in(runtime, instance_id, login)
    async with runtime.db.read() as conn:
        app = await apps.app_by_client_id(conn, instance_id, req["client_id"])
    if app is None or app["id"] != req["app_id"] or app["state"] != apps.ACTIVE:
        raise login_checks.denied("authRequestId: the application is no longer active")
    if app["project_state"] != "active":
        raise login_checks.denied("authRequestId: the project is no longer active")
    await login_checks.check_project_access(runtime, instance_id, app, login)
    await login_checks.check_org_scope(runtime, instance_id, list(req.get("scopes", [])), login)
    login_checks.check_freshness(
        login,
        max_age=int(req.get("max_age", -1)),
        prompt=list(req.get("prompt", [])),
        requested_at=pending.created_at or datetime.now(UTC),
    )
    if req["response_type"] != CODE:
        from donjon.plugins.oidc.implicit import finish_implicit

        return await finish_implicit(runtime, pending, app, login)
    settings = provider_of(runtime).settings
    code = secrets.new_secret()
    event = AuthRequestSucceeded(
        session_id=login.session_id,
        user_id=login.user_id,
        user_org=login.user_org,
        auth_time=format_time(login.auth_time),
        code_digest=secrets.digest(code),
        code_expiration=format_time(datetime.now(UTC) + settings.CodeLifetime),
        amr=login.amr,
    )
    await _push_once(
        runtime,
        AggregateChanges(pending.aggregate(), [event], expected_sequence=pending.sequence),
        creator=login.user_id,
    )
    return redirect_with(
        req["redirect_uri"],
        req["response_mode"],
        {"code": code, "state": req.get("state", ""), "iss": req["issuer"]},
    )


async def fail_auth_request(
    runtime: Runtime, instance_id: str, auth_request_id: str, error: str, description: str
) -> str:
    """End the request with an OAuth error; the callback URL carrying it."""
    if error not in LOGIN_ERRORS:
        raise ConnectError("invalid_argument", f"error: unknown error {error!r}")
    pending = await _pending(runtime, instance_id, auth_request_id)
    req = pending.request
    await _push_once(
        runtime,
        AggregateChanges(
            pending.aggregate(),
            [AuthRequestFailed(error=error, description=description[:500])],
            expected_sequence=pending.sequence,
        ),
        creator="",
    )
    return error_redirect(
        req["redirect_uri"],
        req["response_mode"],
        req.get("state", ""),
        req["issuer"],
        error,
        description[:500],
    )
