"""The device flow's user pages (RFC 8628 §3.3): enter the code, sign in, approve or deny.

GET/POST /ui/login/device          the code the device shows (`user_code` prefills it:
                                   the `verification_uri_complete`)
GET/POST /ui/login/device/consent  the signed-in person sees the application, its
                                   scopes and the code, and approves or denies

A good code goes on to the login pages with `userCode` (as `authRequest` for the
code flow): the login name (or account selection), the password and any further
step, whose end (`LoginContext.proceed`) is the consent page. An unknown,
expired or already used code gets a page saying so, and the form again.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.runtime import Runtime
from donjon.plugins.login import devices
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import browser_session, session_authenticates, session_user

PROBLEMS = {
    devices.UNKNOWN: "This code is not known. Check the code your device shows and enter it again.",
    devices.EXPIRED: "This code has expired. Start again on your device to get a new code.",
    devices.USED: "This code was already used. Start again on your device to get a new code.",
}
#: What the standard scopes let the application do, in words.
SCOPE_WORDS = {
    "openid": "Sign you in",
    "profile": "See your name and profile",
    "email": "See your email address",
    "phone": "See your phone number",
    "address": "See your address",
    "offline_access": "Stay signed in (refresh tokens)",
}


async def code_page(
    ctx: LoginContext, code: str = "", *, error: str = "", status: int = 200
) -> Response[Any]:
    return await ctx.page(
        "device.html", await ctx.org_id(), status=status, error=error, code=code, user_code=""
    )


@get("/ui/login/device")
async def device_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not devices.available(runtime):
        return await unavailable(ctx)
    typed = (request.query_params.get("user_code") or ctx.user_code)[:64]
    return await code_page(ctx, devices.display(typed) or typed.strip())


@post("/ui/login/device", status_code=200)
async def device_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    if not devices.available(runtime):
        return await unavailable(ctx)
    typed = ctx.param("code")[:64]
    if not typed:
        return await code_page(ctx, error="Enter the code your device shows.", status=400)
    device = await devices.load(runtime, instance_id, typed)
    if device.problem is not None:
        return await code_page(ctx, typed, error=PROBLEMS[device.problem], status=400)
    ctx.user_code = device.user_code
    # The login pages go to account selection when this browser has sessions.
    return await ctx.redirect("/ui/login/login" + ctx.query())


async def unavailable(ctx: LoginContext) -> Response[Any]:
    return await ctx.page(
        "message.html",
        status=404,
        title="Device sign-in is not available",
        text="This server does not offer device sign-in.",
    )


async def consent_page(
    ctx: LoginContext, device: devices.DeviceRequest, session_id: str, display_name: str
) -> Response[Any]:
    return await ctx.page(
        "device_consent.html",
        await ctx.org_id(),
        device=device,
        scopes=[SCOPE_WORDS.get(s, s) for s in device.scopes if s in SCOPE_WORDS],
        other_scopes=[s for s in device.scopes if s not in SCOPE_WORDS],
        session_id=session_id,
        display_name=display_name,
    )


async def problem_page(ctx: LoginContext, problem: str, status: int = 400) -> Response[Any]:
    ctx.user_code = ""
    return await ctx.page(
        "message.html",
        status=status,
        title="This device cannot be connected",
        text=PROBLEMS.get(problem, problem),
        link="/ui/login/device",
        link_text="Enter another code",
    )


async def consenting(
    ctx: LoginContext,
) -> tuple[devices.DeviceRequest | None, Any, Response[Any] | None]:
    """The device request and this browser's signed-in session, or the page to show instead."""
    device = await devices.load(ctx.runtime, ctx.instance_id, ctx.user_code)
    if device.problem is not None:
        return None, None, await problem_page(ctx, device.problem)
    state = await browser_session(ctx, ctx.param("sessionId"))
    if state is None or not await session_authenticates(ctx, state):
        return None, None, await ctx.redirect("/ui/login/login" + ctx.query())
    return device, state, None


@get("/ui/login/device/consent")
async def consent_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not devices.available(runtime):
        return await unavailable(ctx)
    device, state, other = await consenting(ctx)
    if other is not None:
        return other
    assert device is not None
    user = await session_user(ctx, state)
    name = user.get("display_name") or user.get("login_name", "")
    return await consent_page(ctx, device, state.id, name)


@post("/ui/login/device/consent", status_code=200)
async def consent_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    if not devices.available(runtime):
        return await unavailable(ctx)
    device, state, other = await consenting(ctx)
    if other is not None:
        return other
    assert device is not None
    decision = ctx.param("decision")
    if decision not in ("approve", "deny"):
        return await ctx.page(
            "message.html", status=400, title="Approve or deny", text="Choose approve or deny."
        )
    try:
        if decision == "approve":
            token = ctx.sessions.token(state.id) or ""
            await devices.approve(runtime, instance_id, device.id, state.id, token)
        else:
            await devices.deny(runtime, instance_id, device.id)
    except ConnectError as exc:
        if exc.code == "failed_precondition" and "pending" in exc.message:
            return await problem_page(ctx, devices.USED)
        if exc.code == "failed_precondition" and "expired" in exc.message:
            return await problem_page(ctx, devices.EXPIRED)
        ctx.user_code = ""
        return await ctx.page(
            "message.html",
            status=400,
            title="This device cannot be connected",
            text=exc.message.partition(": ")[2] or exc.message,
        )
    ctx.user_code = ""
    if decision == "approve":
        return await ctx.page(
            "message.html",
            title="Device connected",
            text=f"{device.app_name} is now signed in. You can close this page and return"
            " to your device.",
        )
    return await ctx.page(
        "message.html",
        title="Device denied",
        text=f"{device.app_name} was not signed in. You can close this page.",
    )
