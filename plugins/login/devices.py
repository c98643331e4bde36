"""The OIDC plugin's device authorizations (RFC 8628), as the login sees them (optional).

When the `oidc` plugin provides `donjon.plugins.oidc.device`, the page
`/ui/login/device` finds a device request by the code the person types,
and the consent page approves or denies it with this browser's session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from donjon.plugins.login.auth_requests import ORG_SCOPE

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

#: Why a typed code cannot be used (None: it can).
UNKNOWN, EXPIRED, USED = "unknown", "expired", "used"


@dataclass(frozen=True)
class DeviceRequest:
    """The parts of a device request the login shows and uses."""

    id: str
    user_code: str
    app_name: str
    project_name: str
    scopes: list[str] = field(default_factory=list)
    #: None when it waits for the person, else UNKNOWN, EXPIRED or USED.
    problem: str | None = None

    @property
    def org_id(self) -> str:
        """The org the request's scope names (`urn:zitadel:iam:org:id:{id}`), else empty."""
        for scope in self.scopes:
            match = ORG_SCOPE.match(scope)
            if match:
                return match.group(1)
        return ""


def _module(runtime: Runtime) -> Any:
    """The OIDC plugin's device module; None when the plugin is missing or disabled."""
    if runtime.pm.get_plugin("oidc") is None:
        return None
    try:
        from donjon.plugins.oidc import device
    except ImportError:
        return None
    return device


def available(runtime: Runtime) -> bool:
    return _module(runtime) is not None


def display(user_code: str) -> str:
    """`XXXX-XXXX`, whatever case and dashes the person typed (empty for a wrong length)."""
    code = "".join(ch for ch in user_code.upper() if ch.isalnum())
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else ""


async def load(runtime: Runtime, instance_id: str, user_code: str) -> DeviceRequest:
    """The device request of the code; `problem` says when it cannot be approved."""
    module = _module(runtime)
    code = display(user_code)
    if module is None or not code:
        return DeviceRequest("", code, "", "", problem=UNKNOWN)
    async with runtime.db.read() as conn:
        row = await module.find_device_request(conn, instance_id, code)
    if row is None:
        return DeviceRequest("", code, "", "", problem=UNKNOWN)
    problem = None
    if row["state"] != module.PENDING:
        problem = USED
    elif row["expires_at"] <= datetime.now(UTC):
        problem = EXPIRED
    return DeviceRequest(
        id=str(row["id"]),
        user_code=code,
        app_name=str(row.get("app_name") or row["client_id"]),
        project_name=str(row.get("project_name") or ""),
        scopes=list(row.get("scopes") or []),
        problem=problem,
    )


async def approve(
    runtime: Runtime, instance_id: str, device_id: str, session_id: str, token: str
) -> None:
    module = _module(runtime)
    assert module is not None
    await module.approve_device_request(runtime, instance_id, device_id, session_id, token)


async def deny(runtime: Runtime, instance_id: str, device_id: str) -> None:
    module = _module(runtime)
    assert module is not None
    await module.deny_device_request(runtime, instance_id, device_id)
