"""The login pages: login name, password, account selection, the next step, signed in.

GET/POST /ui/login/login      login name (a session with the user checked)
GET/POST /ui/login/password   password (the session's password check)
GET/POST /ui/login/accounts   choose one of this browser's sessions
GET      /ui/login/next       after a further step: the next one, or the end
GET      /ui/login/signedin   the end of a login without an auth request
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect
from sqlalchemy import select

from donjon.core.api.connect import ConnectError
from donjon.core.identity import orgs, sessions, user_reads
from donjon.core.identity.session_commands import (
    SessionChanges,
    create_session,
    live_session,
    set_session,
    user_agent,
)
from donjon.core.identity.sessions import SessionState
from donjon.core.identity.users import LOCKED, get_user, users_table
from donjon.core.runtime import Runtime
from donjon.plugins.login import auth_requests
from donjon.plugins.login.flow import LoginContext

WRONG_PASSWORD = "The password is wrong."
LOCKED_USER = "This user is locked. Ask an administrator to unlock it."
WRONG_LOGIN = "The login name or the password is wrong."


def browser_agent(ctx: LoginContext) -> dict[str, Any]:
    """The session's user agent: the browser's address and description."""
    client = ctx.request.client
    try:
        return user_agent(
            ip=client.host if client else "",
            description=ctx.request.headers.get("user-agent", "")[:1024],
        )
    except ConnectError:
        return {}


async def session_user(ctx: LoginContext, state: SessionState) -> dict[str, Any]:
    """The session's user row with its preferred login name (empty dict when gone)."""
    async with ctx.runtime.db.read() as conn:
        row = await sessions.get_session(conn, ctx.instance_id, state.id)
        found = (
            await conn.execute(
                select(users_table).where(
                    users_table.c.instance_id == ctx.instance_id,
                    users_table.c.id == state.user_id,
                )
            )
        ).first()
        if found is None:
            return {}
        user = dict(found._mapping)
        domains = await user_reads.login_domains(conn, ctx.instance_id, {user["resource_owner"]})
    _names, preferred = user_reads.login_names(user["username"], domains[user["resource_owner"]])
    user["login_name"] = preferred
    user["session_row"] = row
    return user


async def browser_session(ctx: LoginContext, session_id: str) -> SessionState | None:
    """The live session of this browser with that id (None when not this browser's)."""
    if not session_id or ctx.sessions.token(session_id) is None:
        return None
    try:
        state = await live_session(ctx.runtime, ctx.instance_id, session_id)
    except ConnectError:
        ctx.forget(session_id)
        return None
    token = ctx.sessions.token(session_id) or ""
    if not state.token_matches(token) or state.expired():
        ctx.forget(session_id)
        return None
    return state


async def accounts(ctx: LoginContext) -> list[dict[str, Any]]:
    """This browser's live sessions with a user, newest first."""
    out = []
    for session_id in reversed(ctx.sessions.session_ids):
        state = await browser_session(ctx, session_id)
        if state is None or not state.user_id:
            continue
        user = await session_user(ctx, state)
        if not user:
            continue
        row = user["session_row"]
        out.append(
            {
                "session_id": state.id,
                "user_id": state.user_id,
                "state": state,
                "display_name": user.get("display_name") or user["username"],
                "login_name": user["login_name"],
                "signed_in": bool(row is not None and sessions.authenticates(_Row(row))),
            }
        )
    return out


def auth_time(state: SessionState) -> datetime | None:
    """When the session's user last proved a factor beyond the login name."""
    times = [at for name, at in state.factors.items() if name != "user"]
    return max(times) if times else None


def needs_password_again(ctx: LoginContext, state: SessionState) -> bool:
    """Whether the auth request wants a newer authentication (`max_age`, `prompt=login`)."""
    if ctx.auth is None:
        return False
    at = auth_time(state)
    return at is None or not ctx.auth.fresh(at)


class _Row:
    """Attribute access to a read-model row dict (what `sessions.authenticates` reads)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)


# -- login name -----------------------------------------------------------------------------


async def login_page(
    ctx: LoginContext, *, error: str = "", login_name: str = "", status: int = 200
) -> Response[Any]:
    org_id = await ctx.org_id()
    policy = await ctx.login_policy(org_id)
    return await ctx.page(
        "login.html",
        org_id,
        status=status,
        error=error,
        login_name=login_name or (ctx.auth.login_hint if ctx.auth else ""),
        password_allowed=policy.allow_username_password,
        register_allowed=policy.allow_register,
        has_accounts=bool(ctx.sessions.entries),
    )


@get(["/ui/login", "/ui/login/"])
async def login_entry(request: Request[Any, Any, Any]) -> Redirect:
    """The login's entry (what setup prints): the login name page, query kept."""
    query = request.url.query
    return Redirect("/ui/login/login" + (f"?{query}" if query else ""), status_code=302)


@get("/ui/login/login")
async def login_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if ctx.param("new") == "1":
        return await login_page(ctx)
    if ctx.auth is not None:
        from donjon.plugins.login import prompts

        return await prompts.start(ctx) or await login_page(ctx)
    if ctx.sessions.entries and await accounts(ctx):
        return await ctx.redirect("/ui/login/accounts" + ctx.query())
    return await login_page(ctx)


@post("/ui/login/login", status_code=200)
async def login_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    login_name = ctx.param("loginName")
    if not login_name:
        return await login_page(ctx, error="Enter your login name.", status=400)
    async with runtime.db.read() as conn:
        user = await user_reads.user_by_login_name(conn, instance_id, login_name)
    org_id = str(user["resource_owner"]) if user else await ctx.org_id()
    policy = await ctx.login_policy(org_id)
    if not policy.allow_username_password:
        return await login_page(
            ctx,
            error="Signing in with a password is not allowed.",
            login_name=login_name,
            status=400,
        )
    if user is None and policy.ignore_unknown_usernames:
        # Do not tell that the name is unknown: ask for a password that cannot match.
        return await ctx.redirect("/ui/login/password" + ctx.query(loginName=login_name))
    try:
        result = await create_session(
            runtime,
            instance_id,
            SessionChanges(checks={"user": {"loginName": login_name}}),
            agent=browser_agent(ctx),
            creator=str(user["id"]) if user else "",
        )
    except ConnectError as exc:
        return await login_page(
            ctx, error=user_check_message(exc), login_name=login_name, status=400
        )
    ctx.remember(result.session_id, result.token)
    return await ctx.redirect("/ui/login/password" + ctx.query(sessionId=result.session_id))


def user_check_message(exc: ConnectError) -> str:
    if exc.code == "not_found":
        return "No user with this login name."
    if "locked" in exc.message:
        return LOCKED_USER
    if "machine" in exc.message:
        return "This user cannot sign in here."
    if "organization" in exc.message:
        return "The user's organization is not active."
    if "not active" in exc.message:
        return "This user is deactivated."
    return exc.message.partition(": ")[2] or exc.message


# -- password -------------------------------------------------------------------------------


async def password_page(
    ctx: LoginContext,
    state: SessionState | None,
    login_name: str,
    *,
    error: str = "",
    status: int = 200,
) -> Response[Any]:
    org_id = state.user_org if state else await ctx.org_id()
    policy = await ctx.login_policy(org_id)
    return await ctx.page(
        "password.html",
        org_id,
        status=status,
        error=error,
        login_name=login_name,
        session_id=state.id if state else "",
        reset_allowed=bool(state) and not policy.hide_password_reset,
        query=ctx.query(sessionId=state.id if state else ""),
    )


@get("/ui/login/password")
async def password_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    session_id = ctx.param("sessionId")
    if not session_id:
        login_name = ctx.param("loginName")
        if not login_name:
            return await ctx.redirect("/ui/login/login" + ctx.query())
        return await password_page(ctx, None, login_name)
    state = await browser_session(ctx, session_id)
    if state is None or not state.user_id:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    user = await session_user(ctx, state)
    return await password_page(ctx, state, user.get("login_name", ""))


@post("/ui/login/password", status_code=200)
async def password_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    password = ctx.form.get("password", "")
    session_id = ctx.param("sessionId")
    if not session_id:
        # An unknown login name under ignoreUnknownUsernames: nothing can match.
        return await password_page(ctx, None, ctx.param("loginName"), error=WRONG_LOGIN, status=400)
    state = await browser_session(ctx, session_id)
    if state is None or not state.user_id:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    user = await session_user(ctx, state)
    login_name = user.get("login_name", "")
    policy = await ctx.login_policy(state.user_org)
    if not password:
        return await password_page(ctx, state, login_name, error="Enter your password.", status=400)
    try:
        result = await set_session(
            runtime,
            state,
            SessionChanges(checks={"password": {"password": password}}),
            creator=state.user_id,
        )
    except ConnectError as exc:
        error = await password_message(ctx, state, exc, policy.ignore_unknown_usernames)
        return await password_page(ctx, state, login_name, error=error, status=400)
    ctx.remember(result.session_id, result.token)
    state = await live_session(runtime, instance_id, state.id)
    return await ctx.proceed(state)


async def password_message(
    ctx: LoginContext, state: SessionState, exc: ConnectError, vague: bool
) -> str:
    """The message of a failed password check: wrong, or locked (now or before)."""
    async with ctx.runtime.db.read() as conn:
        user = await get_user(conn, ctx.instance_id, state.user_id)
    if user is not None and user["state"] == LOCKED:
        return LOCKED_USER
    if exc.code == "invalid_argument":
        return WRONG_LOGIN if vague else WRONG_PASSWORD
    return exc.message.partition(": ")[2] or exc.message


# -- account selection ----------------------------------------------------------------------


@get("/ui/login/accounts")
async def accounts_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    found = await accounts(ctx)
    if not found:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    return await ctx.page("accounts.html", await ctx.org_id(), accounts=found)


@post("/ui/login/accounts", status_code=200)
async def accounts_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not state.user_id:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    if not await session_authenticates(ctx, state) or needs_password_again(ctx, state):
        return await ctx.redirect("/ui/login/password" + ctx.query(sessionId=state.id))
    return await ctx.proceed(state)


async def session_authenticates(ctx: LoginContext, state: SessionState) -> bool:
    """Whether the session proves its user now (user and org active, a factor, not expired)."""
    token = ctx.sessions.token(state.id) or ""
    async with ctx.runtime.db.read() as conn:
        return await sessions.authenticating_session(conn, ctx.instance_id, token) is not None


# -- after a further step, and the end ------------------------------------------------------


@get("/ui/login/next")
async def next_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not await session_authenticates(ctx, state):
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    return await ctx.proceed(state)


@get("/ui/login/signedin")
async def signed_in(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not await session_authenticates(ctx, state):
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    user = await session_user(ctx, state)
    async with runtime.db.read() as conn:
        org = await orgs.get_org(conn, instance_id, state.user_org)
    return await ctx.page(
        "signedin.html",
        state.user_org,
        display_name=user.get("display_name") or user.get("username", ""),
        login_name=user.get("login_name", ""),
        org_name=org["name"] if org else "",
        session_id=state.id,
        now=datetime.now(UTC),
    )


@post("/ui/login/cancel", status_code=200)
async def cancel(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    """Give up the auth request: back to the client with `error=access_denied`."""
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    if ctx.auth is None:
        return await ctx.redirect("/ui/login/login")
    try:
        url = await auth_requests.fail(
            runtime, instance_id, ctx.auth.id, "access_denied", "the user cancelled the login"
        )
    except ConnectError:
        return await ctx.redirect("/ui/login/login")
    return await ctx.finish_response(Redirect(url, status_code=303))
