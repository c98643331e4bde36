"""Email verification of a registered user: the mailed link, and the page that spends it.

    GET/POST /ui/login/email/verify?userId=…&code=…

The code is the one the UserService made for the new address (returned to
the login at registration, then mailed); the page spends it with the
UserService's VerifyEmail command, acting as the user.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.api.user_service_update import VerifyRequest, verify_email
from donjon.core.identity import orgs
from donjon.core.identity.users import UserState
from donjon.core.runtime import Runtime
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.mail import MailError, send_mail
from donjon.plugins.login.settings import login_settings

log = logging.getLogger(__name__)
PATH = "/ui/login/email/verify"


async def send_verification(ctx: LoginContext, user_id: str, org_id: str, code: str) -> bool:
    """Mail the verification link of a new user's address; False (logged) when it fails."""
    from donjon.plugins.login.pages_reset import external_base

    user = await UserState.load(ctx.runtime.store, ctx.instance_id, user_id)
    async with ctx.runtime.db.read() as conn:
        org = await orgs.get_org(conn, ctx.instance_id, org_id)
    org_name = str(org["name"]) if org else "donjon"
    link = external_base(ctx) + PATH + ctx.query(userId=user_id, code=code)
    text = (
        f"Hello {user.display_name or user.username},\n\n"
        f"welcome to {org_name}. To confirm your email address, open\n\n  {link}\n\n"
        f"or enter this code on the verification page:\n\n  {code}\n"
    )
    try:
        await send_mail(
            login_settings(ctx.runtime).SMTPConfiguration,
            user.email,
            f"Confirm your email address for {org_name}",
            text,
        )
    except MailError as exc:
        log.warning("verification mail for user %s: %s", user_id, exc)
        return False
    return True


async def _user(ctx: LoginContext) -> UserState | None:
    user_id = ctx.param("userId")
    if not user_id:
        return None
    state = await UserState.load(ctx.runtime.store, ctx.instance_id, user_id)
    return state if state.exists else None


async def _page(
    ctx: LoginContext, user: UserState, *, error: str = "", status: int = 200
) -> Response[Any]:
    return await ctx.page(
        "verify_email.html",
        user.owner,
        status=status,
        error=error,
        user_id=user.id,
        email=user.email,
        code=ctx.param("code"),
    )


@get(PATH)
async def verify_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    user = await _user(ctx)
    if user is None:
        return await ctx.redirect("/ui/login/login" + ctx.query())
    return await _page(ctx, user)


@post(PATH, status_code=200)
async def verify_submit(
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
    if user.email_verified:
        return await ctx.page(
            "message.html", user.owner, title="Email verified", text="The address is verified."
        )
    try:
        await verify_email(
            ctx.call(user.id, user.owner),
            VerifyRequest(user_id=user.id, verification_code=ctx.param("code")),
        )
    except ConnectError:
        return await _page(
            ctx,
            user,
            error="The code is wrong or expired. Register again or ask for help.",
            status=400,
        )
    return await ctx.page(
        "message.html",
        user.owner,
        title="Email verified",
        text=f"Thank you: {user.email} is verified.",
        link="/ui/login/login" + ctx.query(),
        link_text="Sign in",
    )
