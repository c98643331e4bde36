"""The authorization request's parameters in the login (OIDC Core §3.1.2.1): where
`GET /ui/login/login?authRequest=…` goes, and which sessions may answer it.

- `prompt=none`: never a page. The one signed-in session of this browser (the
  `login_hint`'s user's, when a hint is given) finishes the request; otherwise
  the client gets `login_required` (no session, or too old for `max_age`),
  `account_selection_required` (several) or `interaction_required` (a further
  step is needed, or the session may not log in to this client).
- `prompt=login`: the login name page, even with sessions (the authentication
  must come after the request; the OIDC plugin checks it again).
- `prompt=select_account`: account selection whenever the browser has sessions.
- `prompt=create`: the registration page, when the login policy allows it.
- `login_hint`: that user's session is used when the browser has one; else the
  login name is prefilled.
- Otherwise single sign-on: a browser with one signed-in session uses it at
  once; several go to account selection.

A chosen session whose authentication is too old for `max_age` or
`prompt=login` (`LoginRequest.fresh`) asks its password again.
"""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.response import Redirect

from donjon.core.api.connect import ConnectError
from donjon.core.identity import user_reads
from donjon.plugins.login import auth_requests
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import accounts, needs_password_again
from donjon.plugins.login.steps import StepContext, next_step


async def start(ctx: LoginContext) -> Response[Any] | None:
    """The response for an auth request's first login page; None shows the login name page."""
    auth = ctx.auth
    assert auth is not None
    if "create" in auth.prompt:
        policy = await ctx.login_policy(await ctx.org_id())
        if policy.allow_register:
            return await ctx.redirect("/ui/login/register" + ctx.query())
        return None
    found = await accounts(ctx)
    hinted = await hinted_accounts(ctx, found)
    if "none" in auth.prompt:
        signed_in = [a for a in (hinted if auth.login_hint else found) if a["signed_in"]]
        return await silently(ctx, signed_in)
    if "login" in auth.prompt:
        return None
    if "select_account" in auth.prompt:
        return await ctx.redirect("/ui/login/accounts" + ctx.query()) if found else None
    if auth.login_hint:
        return await use(ctx, hinted[0]) if hinted else None
    if len(found) == 1 and found[0]["signed_in"]:
        return await use(ctx, found[0])
    return await ctx.redirect("/ui/login/accounts" + ctx.query()) if found else None


async def hinted_accounts(ctx: LoginContext, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accounts of the `login_hint`'s user (none without a hint or for an unknown name)."""
    hint = ctx.auth.login_hint if ctx.auth else ""
    if not hint or not found:
        return []
    async with ctx.runtime.db.read() as conn:
        user = await user_reads.user_by_login_name(conn, ctx.instance_id, hint)
    if user is None:
        return []
    return [a for a in found if a["user_id"] == str(user["id"])]


async def use(ctx: LoginContext, account: dict[str, Any]) -> Response[Any]:
    """Continue with this session: at once when it may answer, else its password again."""
    state = account["state"]
    if not account["signed_in"] or needs_password_again(ctx, state):
        return await ctx.redirect("/ui/login/password" + ctx.query(sessionId=state.id))
    return await ctx.proceed(state)


async def silently(ctx: LoginContext, signed_in: list[dict[str, Any]]) -> Response[Any]:
    """`prompt=none`: the code, or an error for the client; never a page of ours."""
    if not signed_in:
        return await fail(ctx, "login_required", "no session of this browser is signed in")
    if len(signed_in) > 1:
        return await fail(
            ctx, "account_selection_required", "several sessions are signed in in this browser"
        )
    state = signed_in[0]["state"]
    if needs_password_again(ctx, state):
        return await fail(ctx, "login_required", "the authentication is older than max_age")
    step = await next_step(StepContext(ctx.runtime, ctx.instance_id, state, ctx.auth))
    if step is not None:
        return await fail(ctx, "interaction_required", f"the login needs the step {step.name}")
    assert ctx.auth is not None
    try:
        url = await auth_requests.finish(
            ctx.runtime, ctx.instance_id, ctx.auth.id, state.id, ctx.sessions.token(state.id) or ""
        )
    except ConnectError as exc:
        return await fail(ctx, "interaction_required", exc.message.partition(": ")[2])
    return await ctx.finish_response(Redirect(url, status_code=303))


async def fail(ctx: LoginContext, error: str, description: str) -> Response[Any]:
    assert ctx.auth is not None
    try:
        url = await auth_requests.fail(
            ctx.runtime, ctx.instance_id, ctx.auth.id, error, description
        )
    except ConnectError as exc:
        return await ctx.page(
            "message.html",
            status=400,
            title="The application cannot be signed in to",
            text=exc.message.partition(": ")[2] or exc.message,
        )
    return await ctx.finish_response(Redirect(url, status_code=303))
