"""Signing out: `GET /ui/login/logout` asks, `POST` terminates and forgets the sessions.

A POST with `sessionId` ends that one session of this browser; without, it
ends every session the browser holds. The cookie is rewritten (or cleared).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.identity.session_commands import terminate_session
from donjon.core.runtime import Runtime
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import browser_session


@get("/ui/login/logout")
async def logout_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    return await ctx.page("logout.html", await ctx.org_id(), done=not ctx.sessions.entries)


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
        ctx.forget(session_id)
    return await ctx.page("logout.html", await ctx.org_id(), done=True)
