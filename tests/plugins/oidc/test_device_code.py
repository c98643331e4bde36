"""Device authorization (RFC 8628): start, poll (pending, slow_down), approve through
the OIDCService with a session, tokens once; deny; expiry; only apps with the grant."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.login_support import OIDC, App, add_person, oidc_app, session
from tests.plugins.oidc.support import issuer, token

pytestmark = pytest.mark.anyio
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def device_app(api: Api, **config: Any) -> App:
    return await oidc_app(
        api,
        grantTypes=[
            "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
            "OIDC_GRANT_TYPE_DEVICE_CODE",
            "OIDC_GRANT_TYPE_REFRESH_TOKEN",
        ],
        responseTypes=["OIDC_RESPONSE_TYPE_CODE"],
        applicationType="OIDC_APP_TYPE_NATIVE",
        authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
        redirectUris=["http://127.0.0.1/callback"],
        **config,
    )


async def start(api: Api, app: App, scope: str = "openid profile offline_access") -> Any:
    r = await api.client.post(
        "/oauth/v2/device_authorization", data={"client_id": app.client_id, "scope": scope}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def poll(api: Api, app: App, device_code: str) -> Any:
    return await token(
        api, {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": app.client_id}
    )


async def test_the_device_flow_from_start_to_tokens(api: Api) -> None:
    app = await device_app(api)
    alice = await add_person(api)
    started = await start(api, app)
    assert started["verification_uri"] == f"{issuer(api)}/ui/login/device"
    assert started["verification_uri_complete"].endswith(
        "user_code=" + started["user_code"].replace("-", "-")
    )
    assert len(started["user_code"]) == 9 and started["user_code"][4] == "-"
    assert started["interval"] == 5 and started["expires_in"] == 300
    r = await poll(api, app, started["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "authorization_pending"
    r = await poll(api, app, started["device_code"])
    assert r.json()["error"] == "slow_down"
    # The login reads it by the code the person types (any case, with or without dash).
    typed = started["user_code"].replace("-", "").lower()
    got = (await api.ok(OIDC, "GetDeviceAuthorizationRequest", {"userCode": typed}))[
        "deviceAuthorizationRequest"
    ]
    assert got["clientId"] == app.client_id and got["appName"] == "web"
    assert got["scope"] == ["openid", "profile", "offline_access"]
    s = await session(api)
    await api.ok(
        OIDC,
        "AuthorizeOrDenyDeviceAuthorization",
        {
            "deviceAuthorizationId": got["id"],
            "session": {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]},
        },
    )
    r = await poll(api, app, started["device_code"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] and body["id_token"] and body["refresh_token"]
    info = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert info.json()["sub"] == alice
    # Once.
    again = await poll(api, app, started["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    status, code, _m = await api.error(
        OIDC, "GetDeviceAuthorizationRequest", {"userCode": started["user_code"]}
    )
    assert (status, code) == (404, "not_found")


async def test_a_denied_device_gets_access_denied(api: Api) -> None:
    app = await device_app(api)
    started = await start(api, app)
    got = (await api.ok(OIDC, "GetDeviceAuthorizationRequest", {"userCode": started["user_code"]}))[
        "deviceAuthorizationRequest"
    ]
    await api.ok(
        OIDC, "AuthorizeOrDenyDeviceAuthorization", {"deviceAuthorizationId": got["id"], "deny": {}}
    )
    r = await poll(api, app, started["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "access_denied"


async def test_approval_needs_the_current_session_token(api: Api) -> None:
    app = await device_app(api)
    await add_person(api)
    started = await start(api, app)
    got = (await api.ok(OIDC, "GetDeviceAuthorizationRequest", {"userCode": started["user_code"]}))[
        "deviceAuthorizationRequest"
    ]
    s = await session(api)
    _s, code, _m = await api.error(
        OIDC,
        "AuthorizeOrDenyDeviceAuthorization",
        {
            "deviceAuthorizationId": got["id"],
            "session": {"sessionId": s["sessionId"], "sessionToken": "wrong"},
        },
    )
    assert code == "permission_denied"


async def test_only_apps_with_the_grant_and_their_own_codes(api: Api) -> None:
    web = await oidc_app(api)
    r = await api.client.post(
        "/oauth/v2/device_authorization", data={"scope": "openid"}, auth=web.basic()
    )
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    app = await device_app(api)
    other = await device_app(api)
    started = await start(api, app)
    r = await poll(api, other, started["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await poll(api, app, "unknown")
    assert r.json()["error"] == "invalid_grant"


async def test_an_expired_device_code(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from donjon.plugins.oidc.device_events import device_auths_table

    app = await device_app(api)
    started = await start(api, app)
    async with api.runtime.db.write() as conn:
        await conn.execute(
            update(device_auths_table).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    r = await poll(api, app, started["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "expired_token"
