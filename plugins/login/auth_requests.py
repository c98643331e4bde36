"""The OIDC plugin's auth requests, as the login sees them (optional: the login works alone).

When the `oidc` plugin provides `donjon.plugins.oidc.auth_requests`, a login
started by `/oauth/v2/authorize` (`?authRequest=<id>`) ends with
`finish_auth_request` (the browser goes back to the client); without it, or
without an auth request, the login ends on the signed-in page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

ORG_SCOPE = re.compile(r"^urn:zitadel:iam:org:id:(.+)$")


@dataclass(frozen=True)
class LoginRequest:
    """The parts of an auth request the login uses."""

    id: str
    scopes: list[str] = field(default_factory=list)
    prompt: list[str] = field(default_factory=list)
    login_hint: str = ""
    app_name: str = ""
    #: Seconds an authentication may be old (OIDC `max_age`); -1 for any age.
    max_age: int = -1
    created_at: datetime | None = None
    ui_locales: list[str] = field(default_factory=list)
    raw: Any = None

    @property
    def org_id(self) -> str:
        """The org the request's scope names (`urn:zitadel:iam:org:id:{id}`), else empty."""
        for scope in self.scopes:
            match = ORG_SCOPE.match(scope)
            if match:
                return match.group(1)
        return ""

    def fresh(self, auth_time: datetime, now: datetime | None = None) -> bool:
        """Whether an authentication at `auth_time` is recent enough for `max_age` and
        `prompt=login` (one made after the request always is), as the OIDC plugin checks."""
        requested_at = self.created_at or datetime.now(UTC)
        if "login" in self.prompt and auth_time < requested_at:
            return False
        if self.max_age < 0:
            return True
        now = now or datetime.now(UTC)
        return auth_time >= min(now - timedelta(seconds=self.max_age), requested_at)


def _module(runtime: Runtime | None = None) -> Any:
    """The OIDC plugin's module; None when it is missing or (with `runtime`) disabled."""
    if runtime is not None and runtime.pm.get_plugin("oidc") is None:
        return None
    try:
        from donjon.plugins.oidc import auth_requests
    except ImportError:
        return None
    return auth_requests


def _get(obj: Any, key: str, default: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


async def load(runtime: Runtime, instance_id: str, auth_request_id: str) -> LoginRequest | None:
    """The auth request when it exists and waits for a login; None otherwise."""
    module = _module(runtime)
    if not auth_request_id or module is None:
        return None
    async with runtime.db.read() as conn:
        found = await module.get_auth_request(conn, instance_id, auth_request_id)
    if found is None:
        return None
    state = _get(found, "state", "added")
    if state not in ("added", "", None):
        return None
    return LoginRequest(
        id=auth_request_id,
        scopes=list(_get(found, "scopes", []) or []),
        prompt=list(_get(found, "prompt", []) or []),
        login_hint=str(_get(found, "login_hint", "") or ""),
        app_name=str(_get(found, "app_name", "") or ""),
        max_age=_max_age(_get(found, "max_age", -1)),
        created_at=_get(found, "created_at", None),
        ui_locales=[str(v) for v in _get(found, "ui_locales", []) or []],
        raw=found,
    )


def _max_age(value: Any) -> int:
    return int(value) if isinstance(value, int) else -1


async def finish(
    runtime: Runtime, instance_id: str, auth_request_id: str, session_id: str, token: str
) -> str:
    """The URL to send the browser back to the client with."""
    module = _module()
    assert module is not None
    return str(
        await module.finish_auth_request(runtime, instance_id, auth_request_id, session_id, token)
    )


async def fail(
    runtime: Runtime, instance_id: str, auth_request_id: str, error: str, description: str
) -> str:
    """End the auth request with an OAuth error; the URL to send the browser back with."""
    module = _module()
    assert module is not None
    return str(
        await module.fail_auth_request(runtime, instance_id, auth_request_id, error, description)
    )
