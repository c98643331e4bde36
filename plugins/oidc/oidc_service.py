"""zitadel.oidc.v2.OIDCService: GetAuthRequest and CreateCallback, so a custom login
can replace the hosted one (ZITADEL's login v2 API).

A login client (IAM_LOGIN_CLIENT, or anyone holding `session.link`) reads
the pending auth request the browser brought (`authRequest=<id>` in the
login URL), logs the user in through the SessionService, then calls
CreateCallback with the session id and its current token, or with an
error. The answer's `callbackUrl` is where the browser goes next (it holds
the code: treat it as a credential). Both wrap `donjon.plugins.oidc.auth_requests`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from donjon.core.api.connect import Call, ConnectError, Message, Service, details, timestamp
from donjon.plugins.oidc.auth_requests import (
    fail_auth_request,
    finish_auth_request,
    get_auth_request,
)
from donjon.plugins.oidc.device import (
    approve_device_request,
    deny_device_request,
    get_device_request,
)

service = Service("zitadel.oidc.v2.OIDCService")
PERMISSION = "session.link"

#: ZITADEL's ErrorReason -> the OAuth error code.
ERROR_REASONS = {
    "ERROR_REASON_UNSPECIFIED": "server_error",
    "ERROR_REASON_INVALID_REQUEST": "invalid_request",
    "ERROR_REASON_UNAUTHORIZED_CLIENT": "unauthorized_client",
    "ERROR_REASON_ACCESS_DENIED": "access_denied",
    "ERROR_REASON_UNSUPPORTED_RESPONSE_TYPE": "unsupported_response_type",
    "ERROR_REASON_INVALID_SCOPE": "invalid_scope",
    "ERROR_REASON_SERVER_ERROR": "server_error",
    "ERROR_REASON_TEMPORARY_UNAVAILABLE": "temporarily_unavailable",
    "ERROR_REASON_INTERACTION_REQUIRED": "interaction_required",
    "ERROR_REASON_LOGIN_REQUIRED": "login_required",
    "ERROR_REASON_ACCOUNT_SELECTION_REQUIRED": "account_selection_required",
    "ERROR_REASON_CONSENT_REQUIRED": "consent_required",
}
PROMPTS = {
    "none": "PROMPT_NONE",
    "login": "PROMPT_LOGIN",
    "consent": "PROMPT_CONSENT",
    "select_account": "PROMPT_SELECT_ACCOUNT",
    "create": "PROMPT_CREATE",
}


class GetAuthRequestRequest(Message):
    auth_request_id: str | None = None


class CallbackSession(Message):
    session_id: str | None = None
    session_token: str | None = None


class AuthorizationError(Message):
    error: str | None = None
    error_description: str | None = None
    error_uri: str | None = None


class CreateCallbackRequest(Message):
    auth_request_id: str | None = None
    session: CallbackSession | None = None
    error: AuthorizationError | None = None


def auth_request_message(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "creationDate": timestamp(row["created_at"]),
        "clientId": row["client_id"],
        "scope": list(row["scopes"]),
        "redirectUri": row["redirect_uri"],
        "prompt": [PROMPTS[p] for p in row["prompt"] if p in PROMPTS],
        "uiLocales": list(row["ui_locales"]),
    }
    if row["login_hint"]:
        out["loginHint"] = row["login_hint"]
    if row["max_age"] is not None:
        out["maxAge"] = f"{row['max_age']}s"
    return out


@service.rpc("GetAuthRequest", request=GetAuthRequestRequest)
async def get_auth_request_rpc(call: Call, req: GetAuthRequestRequest) -> dict[str, Any]:
    """Read a pending auth request (for a login client: `session.link`)."""
    await call.require(PERMISSION)
    if not req.auth_request_id:
        raise ConnectError("invalid_argument", "authRequestId: is required")
    async with call.runtime.db.read() as conn:
        row = await get_auth_request(conn, call.instance_id, req.auth_request_id)
    if row is None:
        raise ConnectError("not_found", "authRequestId: auth request not found")
    return {"authRequest": auth_request_message(row)}


@service.rpc("CreateCallback", request=CreateCallbackRequest)
async def create_callback(call: Call, req: CreateCallbackRequest) -> dict[str, Any]:
    """Finish an auth request with a session (and its token) or an error; the callback URL."""
    await call.require(PERMISSION)
    if not req.auth_request_id:
        raise ConnectError("invalid_argument", "authRequestId: is required")
    if (req.session is None) == (req.error is None):
        raise ConnectError("invalid_argument", "session: send either session or error")
    if req.session is not None:
        if not req.session.session_id:
            raise ConnectError("invalid_argument", "session.sessionId: is required")
        if not req.session.session_token:
            raise ConnectError("invalid_argument", "session.sessionToken: is required")
        url = await finish_auth_request(
            call.runtime,
            call.instance_id,
            req.auth_request_id,
            req.session.session_id,
            req.session.session_token,
        )
    else:
        assert req.error is not None
        reason = req.error.error or "ERROR_REASON_UNSPECIFIED"
        if reason not in ERROR_REASONS:
            raise ConnectError("invalid_argument", f"error.error: unknown reason {reason!r}")
        url = await fail_auth_request(
            call.runtime,
            call.instance_id,
            req.auth_request_id,
            ERROR_REASONS[reason],
            req.error.error_description or "",
        )
    now = datetime.now(UTC)
    return {
        "details": details(changed_at=now, owner=call.instance_id),
        "callbackUrl": url,
    }


class GetDeviceAuthorizationRequestRequest(Message):
    user_code: str | None = None


class AuthorizeOrDenyDeviceAuthorizationRequest(Message):
    device_authorization_id: str | None = None
    session: CallbackSession | None = None
    deny: dict[str, Any] | None = None


@service.rpc("GetDeviceAuthorizationRequest", request=GetDeviceAuthorizationRequestRequest)
async def get_device_authorization_request(
    call: Call, req: GetDeviceAuthorizationRequestRequest
) -> dict[str, Any]:
    """Read a pending device authorization by the user code the person typed."""
    await call.require(PERMISSION)
    if not req.user_code:
        raise ConnectError("invalid_argument", "userCode: is required")
    async with call.runtime.db.read() as conn:
        row = await get_device_request(conn, call.instance_id, req.user_code)
    if row is None:
        raise ConnectError("not_found", "userCode: no pending device authorization has this code")
    return {
        "deviceAuthorizationRequest": {
            "id": row["id"],
            "clientId": row["client_id"],
            "scope": list(row["scopes"]),
            "appName": row["app_name"] or "",
            "projectName": row["project_name"] or "",
        }
    }


@service.rpc(
    "AuthorizeOrDenyDeviceAuthorization", request=AuthorizeOrDenyDeviceAuthorizationRequest
)
async def authorize_or_deny_device_authorization(
    call: Call, req: AuthorizeOrDenyDeviceAuthorizationRequest
) -> dict[str, Any]:
    """Approve a device authorization with a session (and its token), or deny it."""
    await call.require(PERMISSION)
    if not req.device_authorization_id:
        raise ConnectError("invalid_argument", "deviceAuthorizationId: is required")
    if (req.session is None) == (req.deny is None):
        raise ConnectError("invalid_argument", "session: send either session or deny")
    if req.deny is not None:
        await deny_device_request(call.runtime, call.instance_id, req.device_authorization_id)
        return {}
    assert req.session is not None
    if not req.session.session_id:
        raise ConnectError("invalid_argument", "session.sessionId: is required")
    if not req.session.session_token:
        raise ConnectError("invalid_argument", "session.sessionToken: is required")
    await approve_device_request(
        call.runtime,
        call.instance_id,
        req.device_authorization_id,
        req.session.session_id,
        req.session.session_token,
    )
    return {}
