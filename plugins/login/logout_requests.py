"""The OIDC plugin's RP-initiated logout, as the login's logout page sees it (optional).

`/oidc/v1/end_session` without an `id_token_hint` sends the browser to
`/ui/login/logout?client_id=…&post_logout_redirect_uri=…&state=…`. Anyone can
make such a link, so the URI is checked again here (`redirect_after`), and
every session the person ends also loses the refresh tokens its logins got
(`end_login`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

MAX_PARAM = 2048


@dataclass(frozen=True)
class LogoutRequest:
    """What a client asked the logout to end with (all empty: nothing)."""

    client_id: str = ""
    post_logout_redirect_uri: str = ""
    state: str = ""

    def fields(self) -> dict[str, str]:
        """The hidden fields (and query) that carry it from page to page."""
        values = {
            "client_id": self.client_id,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
        }
        return {k: v for k, v in values.items() if v}


def _module(runtime: Runtime) -> Any:
    if runtime.pm.get_plugin("oidc") is None:
        return None
    try:
        from donjon.plugins.oidc import end_session
    except ImportError:
        return None
    return end_session


def read(params: dict[str, str]) -> LogoutRequest:
    return LogoutRequest(
        client_id=params.get("client_id", "")[:MAX_PARAM],
        post_logout_redirect_uri=params.get("post_logout_redirect_uri", "")[:MAX_PARAM],
        state=params.get("state", "")[:MAX_PARAM],
    )


async def redirect_after(runtime: Runtime, instance_id: str, request: LogoutRequest) -> str:
    """The client's checked post-logout URI with `state`; empty when none may be used."""
    module = _module(runtime)
    if module is None or not request.post_logout_redirect_uri or not request.client_id:
        return ""
    allowed = await module.post_logout_uri_allowed(
        runtime, instance_id, request.client_id, request.post_logout_redirect_uri
    )
    if not allowed:
        return ""
    from donjon.plugins.oidc.auth_requests import redirect_with

    return str(redirect_with(request.post_logout_redirect_uri, "query", {"state": request.state}))


async def end_login(runtime: Runtime, instance_id: str, user_id: str, session_id: str) -> None:
    """Terminate the session and revoke the refresh tokens of the logins it made."""
    module = _module(runtime)
    if module is None:
        return
    await module.end_login(runtime, instance_id, module.Logout(user_id, session_id, "", ""))


def query(request: LogoutRequest) -> str:
    fields = request.fields()
    return "?" + urlencode(fields) if fields else ""
