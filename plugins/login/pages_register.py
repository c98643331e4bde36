"""Self-registration: `GET/POST /ui/login/register`, when the login policy allows it.

The new user goes to the auth request's org (`urn:zitadel:iam:org:id:{id}`
scope), else to the instance's default org; that org's login policy must
allow registering and its password complexity policy applies. The user is
made by the UserService's own planning (`plan_human`), with the new user as
creator; then a session with user and password checked continues the login.
With email set up, the address's verification code is mailed
(`pages_verify`); a failed mail does not stop the registration.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from donjon.core.api.connect import ConnectError
from donjon.core.api.user_service_create import plan_human
from donjon.core.api.user_service_shared import Password, Profile, SetEmail
from donjon.core.identity import orgs
from donjon.core.identity.policies import password_problems
from donjon.core.identity.policy_types import PasswordComplexity
from donjon.core.identity.session_commands import SessionChanges, create_session, live_session
from donjon.core.runtime import Runtime
from donjon.plugins.login.flow import LoginContext
from donjon.plugins.login.pages_login import browser_agent
from donjon.plugins.login.pages_verify import send_verification
from donjon.plugins.login.settings import login_settings

FIELDS = ("givenName", "familyName", "email", "username")
# UserService paths -> the form's words.
FIELD_NAMES = {
    "profile.givenName": "First name",
    "profile.familyName": "Last name",
    "email.email": "Email",
    "username": "User name",
    "password.password": "Password",
}


def rules_text(policy: PasswordComplexity) -> str:
    """The password rules, as the hint under the field says them."""
    parts = [f"at least {policy.min_length} characters"]
    for wanted, words in (
        (policy.has_uppercase, "an upper-case letter"),
        (policy.has_lowercase, "a lower-case letter"),
        (policy.has_number, "a digit"),
        (policy.has_symbol, "a symbol"),
    ):
        if wanted:
            parts.append(words)
    return "The password needs " + ", ".join(parts) + "."


def problems_text(policy: PasswordComplexity, password: str) -> str:
    problems = password_problems(policy, password)
    if not problems:
        return ""
    return "The password must be one that " + "; ".join(problems) + "."


def friendly(exc: ConnectError) -> str:
    """A UserService error said with the form's field names."""
    path, sep, problem = exc.message.partition(": ")
    if exc.code == "already_exists":
        return "This user name or email is already taken."
    if sep and path in FIELD_NAMES:
        return f"{FIELD_NAMES[path]}: {problem}"
    return exc.message


async def register_page(
    ctx: LoginContext, org_id: str, *, error: str = "", status: int = 200
) -> Response[Any]:
    policy = await ctx.login_policy(org_id)
    if not policy.allow_register:
        return await ctx.page(
            "message.html",
            org_id,
            status=403,
            title="Registration is closed",
            text="This organization does not allow registering. Ask an administrator for an"
            " account.",
            link="/ui/login/login" + ctx.query(),
            link_text="Back to sign in",
        )
    complexity = await ctx.complexity(org_id)
    form = {name: ctx.param(name) for name in FIELDS}
    return await ctx.page(
        "register.html", org_id, status=status, error=error, form=form, rules=rules_text(complexity)
    )


async def target_org(ctx: LoginContext) -> str | None:
    """The org to register in, when it exists and is active."""
    org_id = await ctx.org_id()
    async with ctx.runtime.db.read() as conn:
        org = await orgs.get_org(conn, ctx.instance_id, org_id) if org_id else None
    return org_id if org and org["state"] == orgs.ACTIVE else None


@get("/ui/login/register")
async def register_form(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    org_id = await target_org(ctx)
    if org_id is None:
        return await ctx.page(
            "message.html",
            status=404,
            title="Unknown organization",
            text="The organization to register in does not exist.",
        )
    return await register_page(ctx, org_id)


@post("/ui/login/register", status_code=200)
async def register_submit(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[Any]:
    ctx = await LoginContext.of(request, runtime, instance_id)
    if not await ctx.csrf_valid():
        return await ctx.refused()
    org_id = await target_org(ctx)
    if org_id is None:
        return await ctx.page(
            "message.html",
            status=404,
            title="Unknown organization",
            text="The organization to register in does not exist.",
        )
    policy = await ctx.login_policy(org_id)
    if not policy.allow_register:
        return await register_page(ctx, org_id)
    password = ctx.form.get("password", "")
    if password != ctx.form.get("passwordConfirm", ""):
        return await register_page(ctx, org_id, error="The passwords do not match.", status=400)
    problems = problems_text(await ctx.complexity(org_id), password)
    if problems:
        return await register_page(ctx, org_id, error=problems, status=400)
    call = ctx.call()
    smtp = login_settings(runtime).SMTPConfiguration
    try:
        planned = await plan_human(
            call,
            org_id,
            user_id=None,
            username=ctx.param("username") or None,
            profile=Profile(given_name=ctx.param("givenName"), family_name=ctx.param("familyName")),
            # With email on, the verification code comes back here to be mailed.
            email=SetEmail(email=ctx.param("email"), return_code={} if smtp.enabled else None),
            phone=None,
            password=Password(password=password),
            hashed=None,
            metadata=[],
        )
        await runtime.store.push(planned.changes, creator=planned.user_id)
    except ConnectError as exc:
        return await register_page(ctx, org_id, error=friendly(exc), status=400)
    if planned.email_code:
        await send_verification(ctx, planned.user_id, org_id, planned.email_code)
    try:
        result = await create_session(
            runtime,
            instance_id,
            SessionChanges(
                checks={"user": {"userId": planned.user_id}, "password": {"password": password}}
            ),
            agent=browser_agent(ctx),
            creator=planned.user_id,
        )
    except ConnectError:
        return await ctx.redirect("/ui/login/login" + ctx.query(new="1"))
    ctx.remember(result.session_id, result.token)
    return await ctx.proceed(await live_session(runtime, instance_id, result.session_id))
