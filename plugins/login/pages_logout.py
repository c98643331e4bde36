"""Signing out: `GET /ui/login/logout` asks, `POST` terminates and forgets the sessions.

A POST with `sessionId` ends that one session of this browser; without, it
ends every session the browser holds. The cookie is rewritten (or cleared).

RP-initiated logout without an `id_token_hint` arrives here from
`/oidc/v1/end_session` with `client_id`, `post_logout_redirect_uri` and
`state` (`logout_requests`): the page lists the browser's accounts to choose
from (or all), each ended session also loses its refresh tokens, and the
browser then goes to the post-logout URI with `state` when the client
registered it, else to the signed-out page. A browser without sessions goes
there at once. `GET /ui/login/logout/done` is the signed-out page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect

from donjon.core.api.connect import ConnectError
from donjon.core.identity.session_commands import terminate_session
from donjon.core.runtime import Runtime
from donjon.plugins.login import logout_requests
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import accounts, browser_session


def logout_request(ctx: LoginContext) -> logout_requests.LogoutRequest:
    source = ctx.form if ctx.request.method == "POST" else dict(ctx.request.query_params)
    return logout_requests.read(source)


async def signed_out(ctx: LoginContext, request: logout_requests.LogoutRequest) -> Response[Any]:
    """The end of a logout: the client's post-logout URI, else the signed-out page."""
    target = await logout_requests.redirect_after(ctx.runtime, ctx.instance_id, request)
    if target:
        return await ctx.finish_response(Redirect(target, status_code=303))
    return await ctx.page("logout.html", await ctx.org_id(), done=True)


@get("/ui/login/logout")
async def logout_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    wanted = logout_request(ctx)
    found = await accounts(ctx)
    if not found:
        return await signed_out(ctx, wanted)
    return await ctx.page(
        "logout.html",
        await ctx.org_id(),
        done=False,
        accounts=found,
        logout_fields=wanted.fields(),
    )


@get("/ui/login/logout/done")
async def logout_done(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    return await ctx.page("logout.html", await ctx.org_id(), done=True)


@post("/ui/login/logout", status_code=200)
async def logout_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    wanted = ctx.param("sessionId")
    targets = [wanted] if wanted else list(ctx.sessions.session_ids)
    for session_id in targets:
        state = await browser_session(ctx, session_id)
        if state is not None:
            try:
                await terminate_session(runtime, state, creator=state.user_id or state.creator)
            except ConnectError:
                pass
            if state.user_id:
                await logout_requests.end_login(runtime, instance_id, state.user_id, state.id)
        ctx.forget(session_id)
    return await signed_out(ctx, logout_request(ctx))
