"""The `password_change` step: a user whose password must be changed (set by an
administrator with `changeRequired`) chooses a new one before the login ends.

    GET/POST /ui/login/password/change?sessionId=…

The change is the UserService's SetPassword with the current password (acting
as the user; the password complexity policy applies). A changed password
clears the password factor of the user's sessions, so the session's password
is checked again with the new one (a new token) before the login goes on.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.api.user_service_shared import Password
from donjon.core.api.user_service_update import SetPasswordRequest, set_password
from donjon.core.identity.session_commands import SessionChanges, live_session, set_session
from donjon.core.identity.sessions import SessionState
from donjon.core.identity.users import UserState
from donjon.core.runtime import Runtime
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import browser_session, session_authenticates
from donjon.plugins.login.pages_register import problems_text, rules_text
from donjon.plugins.login.steps import LoginStep, StepContext

PATH = "/ui/login/password/change"


async def change_needed(context: StepContext) -> bool:
    user = await UserState.load(context.runtime.store, context.instance_id, context.session.user_id)
    return user.exists and user.password_change_required


PASSWORD_CHANGE = LoginStep("password_change", PATH, change_needed)


async def _page(
    ctx: LoginContext, state: SessionState, *, error: str = "", status: int = 200
) -> Response[Any]:
    return await ctx.page(
        "change_password.html",
        state.user_org,
        status=status,
        error=error,
        session_id=state.id,
        rules=rules_text(await ctx.complexity(state.user_org)),
    )


@get(PATH)
async def change_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not await session_authenticates(ctx, state):
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    return await _page(ctx, state)


@post(PATH, status_code=200)
async def change_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not await session_authenticates(ctx, state):
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    current = ctx.form.get("currentPassword", "")
    password = ctx.form.get("password", "")
    if password != ctx.form.get("passwordConfirm", ""):
        return await _page(ctx, state, error="The new passwords do not match.", status=400)
    problems = problems_text(await ctx.complexity(state.user_org), password)
    if problems:
        return await _page(ctx, state, error=problems, status=400)
    try:
        await set_password(
            ctx.call(state.user_id, state.user_org),
            SetPasswordRequest(
                user_id=state.user_id,
                new_password=Password(password=password),
                current_password=current,
            ),
        )
    except ConnectError as exc:
        message = (
            "The current password is wrong."
            if "currentPassword" in exc.message
            else exc.message.partition(": ")[2] or exc.message
        )
        return await _page(ctx, state, error=message, status=400)
    state = await live_session(runtime, instance_id, state.id)
    result = await set_session(
        runtime,
        state,
        SessionChanges(checks={"password": {"password": password}}),
        creator=state.user_id,
    )
    ctx.remember(result.session_id, result.token)
    return await ctx.proceed(await live_session(runtime, instance_id, state.id))
