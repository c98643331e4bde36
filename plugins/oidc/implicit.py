"""The implicit flow (OIDC Core §3.2): tokens in the redirect URI's fragment.

Only for apps registered with the implicit grant (RFC 9700 §2.1.2 advises
against it).
"""

from __future__ import annotations

from typing import Any

from donjon.core.api.connect import ConnectError
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_request_events import AuthRequestState
from donjon.plugins.oidc.login_checks import Login


async def finish_implicit(
    runtime: Runtime, pending: AuthRequestState, app: dict[str, Any], login: Login
) -> str:
    raise ConnectError("unimplemented", "authRequestId: the implicit flow is not available yet")
