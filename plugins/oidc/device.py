"""Device authorization (RFC 8628): starting one, and the login's part.

A device (a TV, a CLI) asks at `/oauth/v2/device_authorization` and shows
the person a `user_code` and the `verification_uri` (the hosted login's
`/ui/login/device`); the person logs in there (or in a custom login), types
the code and approves; meanwhile the device polls the token endpoint with
its `device_code` (`grants.device_code`).

The interface for logins (as `auth_requests` for the code flow):

- `get_device_request(conn, instance_id, user_code)`: the pending request
  (None when unknown, expired or finished) with `id`, `client_id`,
  `app_name`, `project_name`, `scopes`; the code is read case-insensitively,
  with or without its dash;
- `find_device_request(conn, instance_id, user_code)`: the newest request
  with that code whatever its `state` (`pending`, `approved`, `denied`,
  `done`) and `expires_at`, so a login can say why a code no longer works;
- `approve_device_request(runtime, instance_id, id, session_id, session_token)`:
  the session's user approves (the same login checks as an auth request);
- `deny_device_request(runtime, instance_id, id)`: the person refuses.

Both raise `not_found` for an unknown request and `failed_precondition`
for one that expired or is no longer pending.
"""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core import ids
from donjon.core.api.connect import ConnectError
from donjon.core.errors import ConcurrencyError
from donjon.core.events import AggregateChanges, Event
from donjon.core.identity import apps, secrets
from donjon.core.identity.projects import projects_table
from donjon.core.identity.sessions import format_time
from donjon.core.runtime import Runtime
from donjon.plugins.oidc import login_checks
from donjon.plugins.oidc.device_events import (
    PENDING,
    DeviceAuthAdded,
    DeviceAuthApproved,
    DeviceAuthDenied,
    DeviceAuthState,
    device_auths_table,
)

#: RFC 8628 §6.1: consonants only (no vowels, so no words), 8 characters: 20^8 codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
DEVICE_LIFETIME = timedelta(minutes=5)
INTERVAL = 5  # seconds between polls
VERIFICATION_PATH = "/ui/login/device"


def new_user_code() -> str:
    return "".join(random.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalise_user_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class StartedDevice:
    device_code: str
    user_code: str
    expires_in: int
    interval: int


async def add_device_request(
    runtime: Runtime, instance_id: str, app: dict[str, Any], scopes: list[str]
) -> StartedDevice:
    device_code = secrets.new_secret()
    user_code = new_user_code()
    event = DeviceAuthAdded(
        client_id=app["client_id"],
        app_id=app["id"],
        device_code_digest=secrets.digest(device_code),
        user_code=user_code,
        expiration=format_time(datetime.now(UTC) + DEVICE_LIFETIME),
        interval=INTERVAL,
        scopes=scopes,
    )
    state = DeviceAuthState(instance_id, ids.new_id())
    await runtime.store.push(
        AggregateChanges(state.aggregate(app["resource_owner"]), [event], expected_sequence=0),
        creator="",
    )
    return StartedDevice(
        device_code, display_user_code(user_code), int(DEVICE_LIFETIME.total_seconds()), INTERVAL
    )


async def find_device_request(
    conn: AsyncConnection, instance_id: str, user_code: str
) -> dict[str, Any] | None:
    """The newest device request with this user code, in any state (see the module docstring)."""
    code = normalise_user_code(user_code or "")
    if len(code) != USER_CODE_LENGTH:
        return None
    d, a, p = device_auths_table, apps.apps_table, projects_table
    row = (
        await conn.execute(
            select(d, a.c.name.label("app_name"), p.c.name.label("project_name"))
            .outerjoin(a, (a.c.instance_id == d.c.instance_id) & (a.c.id == d.c.app_id))
            .outerjoin(p, (p.c.instance_id == a.c.instance_id) & (p.c.id == a.c.project_id))
            .where(d.c.instance_id == instance_id, d.c.user_code == code)
            .order_by(d.c.created_at.desc())
            .limit(1)
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def get_device_request(
    conn: AsyncConnection, instance_id: str, user_code: str
) -> dict[str, Any] | None:
    """The pending device request with this user code (see the module docstring)."""
    row = await find_device_request(conn, instance_id, user_code)
    if row is None or row["state"] != PENDING or row["expires_at"] <= datetime.now(UTC):
        return None
    return row


async def _pending(runtime: Runtime, instance_id: str, device_id: str) -> DeviceAuthState:
    if not device_id:
        raise ConnectError("invalid_argument", "deviceAuthorizationId: is required")
    state = await DeviceAuthState.load(runtime.store, instance_id, device_id)
    if not state.state:
        raise ConnectError("not_found", "deviceAuthorizationId: not found")
    if state.state != PENDING:
        raise ConnectError("failed_precondition", "deviceAuthorizationId: no longer pending")
    if state.expiration is not None and state.expiration <= datetime.now(UTC):
        raise ConnectError("failed_precondition", "deviceAuthorizationId: expired")
    return state


async def _push(runtime: Runtime, state: DeviceAuthState, event: Event, creator: str) -> None:
    try:
        await runtime.store.push(
            AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence),
            creator=creator,
        )
    except ConcurrencyError:
        raise ConnectError(
            "failed_precondition", "deviceAuthorizationId: no longer pending"
        ) from None


async def approve_device_request(
    runtime: Runtime, instance_id: str, device_id: str, session_id: str, session_token: str
) -> None:
    """The session's user approves the device (login checks as for an auth request)."""
    pending = await _pending(runtime, instance_id, device_id)
    _session, login = await login_checks.session_login(
        runtime, instance_id, session_id, session_token
    )
    await login_checks.check_user_may_log_in(runtime, instance_id, login)
    async with runtime.db.read() as conn:
        app = await apps.app_by_client_id(conn, instance_id, pending.request["client_id"])
    if app is None or app["state"] != apps.ACTIVE or app["project_state"] != "active":
        raise login_checks.denied("deviceAuthorizationId: the application is no longer active")
    await login_checks.check_project_access(runtime, instance_id, app, login)
    await login_checks.check_org_scope(
        runtime, instance_id, list(pending.request.get("scopes", [])), login
    )
    event = DeviceAuthApproved(
        session_id=login.session_id,
        user_id=login.user_id,
        user_org=login.user_org,
        auth_time=format_time(login.auth_time),
        amr=login.amr,
    )
    await _push(runtime, pending, event, login.user_id)


async def deny_device_request(runtime: Runtime, instance_id: str, device_id: str) -> None:
    pending = await _pending(runtime, instance_id, device_id)
    await _push(runtime, pending, DeviceAuthDenied(), "")
