"""Password reset by email code, when the login policy does not hide it.

    GET/POST /ui/login/password/reset?sessionId=…   send a code to the user's email
    GET/POST /ui/login/password/set?userId=…&code=…  set a new password with the code

The code is made by the UserService's PasswordReset command (acting as the
user, `returnCode`: this plugin delivers it), mailed through
`Plugins.login.SMTPConfiguration`, and spent by its SetPassword command,
which checks the password complexity policy. Then the login goes on with a
new session for the user (password checked).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.api.user_service_shared import Password
from donjon.core.api.user_service_update import (
    PasswordResetRequest,
    SetPasswordRequest,
    password_reset,
    set_password,
)
from donjon.core.identity.session_commands import SessionChanges, create_session, live_session
from donjon.core.identity.users import UserState
from donjon.core.runtime import Runtime
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.mail import MailError, send_mail
from donjon.plugins.login.pages_login import browser_agent, browser_session, session_user
from donjon.plugins.login.pages_register import problems_text, rules_text
from donjon.plugins.login.settings import login_settings

log = logging.getLogger(__name__)


def reset_mail(display_name: str, link: str, code: str, org_name: str) -> tuple[str, str]:
    subject = f"Reset your password for {org_name}"
    text = (
        f"Hello {display_name},\n\n"
        f"someone asked to reset your password for {org_name}. To choose a new one, open\n\n"
        f"  {link}\n\n"
        f"or enter this code on the reset page:\n\n  {code}\n\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n"
    )
    return subject, text


def external_base(ctx: LoginContext) -> str:
    """The URL of this server as the browser reached it (scheme and port of the settings)."""
    from donjon.core.http.edge import request_host

    settings = ctx.runtime.settings
    host = request_host(ctx.request.headers.get("host", "")) or settings.ExternalDomain
    scheme = "https" if settings.ExternalSecure else "http"
    default = 443 if settings.ExternalSecure else 80
    port = "" if settings.ExternalPort == default else f":{settings.ExternalPort}"
    return f"{scheme}://{host}{port}"


async def disabled(ctx: LoginContext, org_id: str) -> Response[Any] | None:
    policy = await ctx.login_policy(org_id)
    if policy.hide_password_reset:
        return await ctx.page(
            "message.html",
            org_id,
            status=403,
            title="Password reset is off",
            text="This organization does not allow resetting passwords here. Ask an administrator.",
            link="/ui/login/login" + ctx.query(),
            link_text="Back to sign in",
        )
    return None


@get("/ui/login/password/reset")
async def reset_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not state.user_id:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    if (refusal := await disabled(ctx, state.user_org)) is not None:
        return refusal
    user = await session_user(ctx, state)
    return await ctx.page(
        "reset.html", state.user_org, login_name=user.get("login_name", ""), session_id=state.id
    )


@post("/ui/login/password/reset", status_code=200)
async def reset_submit(
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
    if (refusal := await disabled(ctx, state.user_org)) is not None:
        return refusal
    user = await session_user(ctx, state)
    login_name = user.get("login_name", "")
    smtp = login_settings(runtime).SMTPConfiguration
    if not smtp.enabled:
        return await ctx.page(
            "reset.html",
            state.user_org,
            status=503,
            login_name=login_name,
            session_id=state.id,
            error="Email is not set up on this server, so no code can be sent. Ask an"
            " administrator to reset your password.",
        )
    if not user.get("email"):
        return await ctx.page(
            "reset.html",
            state.user_org,
            status=400,
            login_name=login_name,
            session_id=state.id,
            error="This user has no email address.",
        )
    call = ctx.call(state.user_id, state.user_org)
    try:
        answer = await password_reset(
            call, PasswordResetRequest(user_id=state.user_id, return_code={})
        )
    except ConnectError as exc:
        return await ctx.page(
            "reset.html",
            state.user_org,
            status=400,
            login_name=login_name,
            session_id=state.id,
            error=exc.message,
        )
    code = answer["verificationCode"]
    link = (
        external_base(ctx) + "/ui/login/password/set" + ctx.query(userId=state.user_id, code=code)
    )
    brand_name = (await _org_name(ctx, state.user_org)) or "donjon"
    subject, text = reset_mail(
        str(user.get("display_name") or user.get("username")), link, code, brand_name
    )
    try:
        await send_mail(smtp, str(user["email"]), subject, text)
    except MailError as exc:
        log.warning("password reset mail for user %s: %s", state.user_id, exc)
        return await ctx.page(
            "reset.html",
            state.user_org,
            status=502,
            login_name=login_name,
            session_id=state.id,
            error="The email could not be sent. Try again later.",
        )
    return await ctx.page(
        "reset.html",
        state.user_org,
        sent=True,
        login_name=login_name,
        set_query=ctx.query(userId=state.user_id),
    )


async def _org_name(ctx: LoginContext, org_id: str) -> str:
    from donjon.core.identity import orgs

    async with ctx.runtime.db.read() as conn:
        org = await orgs.get_org(conn, ctx.instance_id, org_id)
    return str(org["name"]) if org else ""


async def set_page(
    ctx: LoginContext, user: UserState, *, error: str = "", status: int = 200
) -> Response[Any]:
    return await ctx.page(
        "set_password.html",
        user.owner,
        status=status,
        error=error,
        user_id=user.id,
        code=ctx.param("code"),
        rules=rules_text(await ctx.complexity(user.owner)),
    )


async def _user(ctx: LoginContext) -> UserState | None:
    user_id = ctx.param("userId")
    if not user_id:
        return None
    state = await UserState.load(ctx.runtime.store, ctx.instance_id, user_id)
    return state if state.exists else None


@get("/ui/login/password/set")
async def set_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    user = await _user(ctx)
    if user is None:
        return await ctx.redirect("/ui/login/login" + ctx.query())
    return await set_page(ctx, user)


@post("/ui/login/password/set", status_code=200)
async def set_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    user = await _user(ctx)
    if user is None:
        return await ctx.redirect("/ui/login/login" + ctx.query())
    if (refusal := await disabled(ctx, user.owner)) is not None:
        return refusal
    password = ctx.form.get("password", "")
    code = ctx.param("code")
    if not code:
        return await set_page(ctx, user, error="Enter the code from the email.", status=400)
    if password != ctx.form.get("passwordConfirm", ""):
        return await set_page(ctx, user, error="The passwords do not match.", status=400)
    problems = problems_text(await ctx.complexity(user.owner), password)
    if problems:
        return await set_page(ctx, user, error=problems, status=400)
    try:
        await set_password(
            ctx.call(user.id, user.owner),
            SetPasswordRequest(
                user_id=user.id, new_password=Password(password=password), verification_code=code
            ),
        )
    except ConnectError as exc:
        message = (
            "The code is wrong or expired. Ask for a new one."
            if "verificationCode" in exc.message
            else exc.message.partition(": ")[2] or exc.message
        )
        return await set_page(ctx, user, error=message, status=400)
    try:
        result = await create_session(
            runtime,
            instance_id,
            SessionChanges(
                checks={"user": {"userId": user.id}, "password": {"password": password}}
            ),
            agent=browser_agent(ctx),
            creator=user.id,
        )
    except ConnectError:
        # A locked user may reset its password but still cannot sign in.
        return await ctx.page(
            "message.html",
            user.owner,
            title="Password changed",
            text="Your password is changed, but you cannot sign in now: the user is locked"
            " or not active. Ask an administrator.",
        )
    ctx.remember(result.session_id, result.token)
    return await ctx.proceed(await live_session(runtime, instance_id, result.session_id))
