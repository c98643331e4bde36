"""What every page of the hosted login shares: the request's context, forms, and the end.

`LoginContext.of(request, ...)` gathers the instance, this browser's CSRF
token and sessions, the auth request (`authRequest` in the query or form),
the device code being approved (`userCode`, RFC 8628) and the branding.
`proceed` is where a proven session goes next: a further step (`steps`),
else back to the client, else the device's consent page, else the
signed-in page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.response import Redirect

from donjon.core.api.connect import Call, ConnectError
from donjon.core.api.org_service import default_org_id
from donjon.core.identity import policies
from donjon.core.identity.policy_types import LoginPolicy, PasswordComplexity
from donjon.core.identity.sessions import SessionState
from donjon.plugins.login import auth_requests, cookies, devices, render
from donjon.plugins.login.settings import login_settings
from donjon.plugins.login.steps import StepContext, next_step

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

MAX_FIELD = 4096  # characters of one form field


@dataclass
class LoginContext:
    request: Request[Any, Any, Any]
    runtime: Runtime
    instance_id: str
    csrf: cookies.Csrf
    sessions: cookies.BrowserSessions
    form: dict[str, str]
    auth_id: str
    auth: auth_requests.LoginRequest | None
    #: The device code (`XXXX-XXXX`) this login approves, when it is not an auth request's.
    user_code: str = ""
    sessions_changed: bool = False

    @classmethod
    async def of(
        cls, request: Request[Any, Any, Any], runtime: Runtime, instance_id: str
    ) -> LoginContext:
        form: dict[str, str] = {}
        if request.method == "POST":
            raw = await request.form()
            form = {k: str(v)[:MAX_FIELD] for k, v in raw.items() if isinstance(v, str)}
        auth_id = (form.get("authRequest") or request.query_params.get("authRequest") or "")[:200]
        auth = await auth_requests.load(runtime, instance_id, auth_id)
        user_code = form.get("userCode") or request.query_params.get("userCode") or ""
        return cls(
            request,
            runtime,
            instance_id,
            await cookies.csrf_for(request, runtime, instance_id),
            await cookies.read_sessions(request, runtime, instance_id),
            form,
            auth_id,
            auth,
            devices.display(user_code[:64]) if auth is None else "",
        )

    def param(self, name: str) -> str:
        """A form field (POST) or query parameter (GET), stripped."""
        value = self.form.get(name) if self.request.method == "POST" else None
        if value is None:
            value = self.request.query_params.get(name) or ""
        return value.strip()[:MAX_FIELD]

    async def csrf_valid(self) -> bool:
        return await cookies.csrf_ok(
            self.request, self.runtime, self.instance_id, self.form.get("csrf", "")
        )

    def query(self, **extra: str) -> str:
        """`?authRequest=…&…` for links and redirects (empty values left out)."""
        params = {
            "authRequest": self.auth_id if self.auth else "",
            "userCode": self.user_code,
            **extra,
        }
        kept = {k: v for k, v in params.items() if v}
        return "?" + urlencode(kept) if kept else ""

    async def org_id(self) -> str:
        """The org a login without a known user is in: the auth request's (or device
        request's) org scope, else the instance's default org."""
        if self.auth and self.auth.org_id:
            return self.auth.org_id
        if self.user_code:
            device = await devices.load(self.runtime, self.instance_id, self.user_code)
            if device.org_id:
                return device.org_id
        return await default_org_id(self.call())

    def call(self, user_id: str = "", org_id: str = "") -> Call:
        """A Call acting as the user (the login reuses the UserService's commands)."""
        from donjon.core.api.auth import Principal

        principal = (
            Principal(user_id, org_id, self.instance_id, method="hosted_login") if user_id else None
        )
        return Call(self.runtime, self.instance_id, principal, org_id)

    async def login_policy(self, org_id: str | None) -> LoginPolicy:
        async with self.runtime.db.read() as conn:
            return await policies.login_policy(
                conn, self.instance_id, org_id or None, self.runtime.settings
            )

    async def complexity(self, org_id: str | None) -> PasswordComplexity:
        async with self.runtime.db.read() as conn:
            return await policies.password_complexity(
                conn, self.instance_id, org_id or None, self.runtime.settings
            )

    def remember(self, session_id: str, token: str) -> None:
        limit = login_settings(self.runtime).MaxSessionsPerBrowser
        self.sessions.remember(session_id, token, limit)
        self.sessions_changed = True

    def forget(self, session_id: str) -> None:
        self.sessions.forget(session_id)
        self.sessions_changed = True

    async def page(self, template: str, org_id: str | None = None, **values: Any) -> Response[Any]:
        brand = await render.branding(self.runtime, self.instance_id, org_id)
        values.setdefault("auth_request", self.auth_id if self.auth else "")
        values.setdefault("user_code", self.user_code)
        values.setdefault("app_name", self.auth.app_name if self.auth else "")
        values.setdefault("query", self.query())
        values.setdefault("new_query", self.query(new="1"))
        response = render.page(template, brand, csrf=self.csrf.token, **values)
        return await self.finish_response(response)

    async def redirect(self, path: str) -> Response[Any]:
        return await self.finish_response(Redirect(path, status_code=303))

    async def finish_response(self, response: Response[Any]) -> Response[Any]:
        cookies.with_csrf_cookie(response, self.runtime, self.csrf)
        if self.sessions_changed:
            response.set_cookie(await cookies.sessions_cookie(self.runtime, self.sessions))
        for name, value in render.PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def refused(self) -> Response[Any]:
        """The page of a POST without this browser's CSRF token."""
        return await self.page(
            "message.html",
            status=403,
            title="Please try again",
            text="This form expired or was not sent from this site. Go back, reload the page"
            " and send it again.",
            link="/ui/login/login" + self.query(),
            link_text="Back to sign in",
        )

    async def proceed(self, session: SessionState) -> Response[Any]:
        """Where a session whose user proved a first factor goes next."""
        step = await next_step(StepContext(self.runtime, self.instance_id, session, self.auth))
        if step is not None:
            return await self.redirect(step.path + self.query(sessionId=session.id))
        if self.auth is not None:
            token = self.sessions.token(session.id) or ""
            try:
                url = await auth_requests.finish(
                    self.runtime, self.instance_id, self.auth.id, session.id, token
                )
            except ConnectError as exc:
                return await self.page(
                    "message.html",
                    status=400,
                    title="The application cannot be signed in to",
                    text=exc.message.partition(": ")[2] or exc.message,
                )
            return await self.finish_response(Redirect(url, status_code=303))
        if self.user_code:
            return await self.redirect(
                "/ui/login/device/consent" + self.query(sessionId=session.id)
            )
        return await self.redirect("/ui/login/signedin" + self.query(sessionId=session.id))
