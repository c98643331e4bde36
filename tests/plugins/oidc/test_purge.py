"""Purging expired OIDC rows: auth requests, codes, device requests, access and refresh
tokens and used assertion ids go once expired (and kept for PurgeRetention), in batches;
a rebuild brings them back only as expired; the job starts and stops with the server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from donjon.core.projections.rebuild import rebuild
from donjon.plugins.oidc.auth_request_events import AuthRequestsProjection
from donjon.plugins.oidc.device_events import DeviceAuthsProjection
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.purge import TARGETS, purge_expired
from donjon.plugins.oidc.tokens.events import AccessTokensProjection
from donjon.plugins.oidc.tokens.refresh import RefreshTokensProjection
from tests.api.conftest import Api
from tests.plugins.oidc.login_support import REDIRECT, add_person, code_for, oidc_app, start
from tests.plugins.oidc.support import (
    client_credentials,
    jwt_profile,
    machine,
    token,
)
from tests.plugins.oidc.test_device_code import device_app, poll
from tests.plugins.oidc.test_device_code import start as start_device

pytestmark = pytest.mark.anyio
LATER = datetime.now(UTC) + timedelta(days=400)


async def counts(api: Api) -> dict[str, int]:
    out = {}
    async with api.runtime.db.read() as conn:
        for target in TARGETS:
            t = target.table
            out[t.name] = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
    return out


async def some_of_everything(api: Api, assertion_lifetime: int = 300) -> dict[str, Any]:
    """One row or more in each table the purge looks at, and the credentials behind them."""
    app = await oidc_app(api)
    await add_person(api)
    await start(api, app)  # an auth request nobody finishes
    code, verifier = await code_for(api, app, scope="openid offline_access")
    unredeemed, _ = await code_for(api, app)
    r = await token(
        api,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=app.basic(),
    )
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["refresh_token"]
    device_client = await device_app(api)
    device = await start_device(api, device_client)
    bot = await machine(api, f"purged-{id(tokens)}", key=True)
    access = (await client_credentials(api, bot))["access_token"]
    r = await jwt_profile(api, bot, lifetime=assertion_lifetime)
    assert r.status_code == 200, r.text
    return {
        "app": app,
        "access": access,
        "refresh": tokens["refresh_token"],
        "unredeemed": unredeemed,
        "device_client": device_client,
        "device_code": device["device_code"],
    }


async def refused(api: Api, made: dict[str, Any]) -> None:
    """Every credential made by some_of_everything is refused."""
    app = made["app"]
    r = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {made['access']}"}
    )
    assert r.status_code == 401, r.text
    r = await token(
        api, {"grant_type": "refresh_token", "refresh_token": made["refresh"]}, auth=app.basic()
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = await token(
        api,
        {"grant_type": "authorization_code", "code": made["unredeemed"], "redirect_uri": REDIRECT},
        auth=app.basic(),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = await poll(api, made["device_client"], made["device_code"])
    assert r.status_code == 400 and r.json()["error"] in ("expired_token", "invalid_grant")


async def test_expired_rows_are_purged_and_live_ones_kept(api: Api) -> None:
    await some_of_everything(api)
    before = await counts(api)
    assert all(before.values()), before
    settings = provider_of(api.runtime).settings
    # Nothing has expired yet: nothing goes.
    kept = await purge_expired(
        api.runtime.db, retention=settings.PurgeRetention, batch_size=settings.PurgeBatchSize
    )
    assert not any(kept.values()) and await counts(api) == before
    # Expired a year later, but not for PurgeRetention (401 days) yet: still kept.
    kept = await purge_expired(
        api.runtime.db, retention=timedelta(days=401), batch_size=2, now=LATER
    )
    assert not any(kept.values())
    deleted = await purge_expired(api.runtime.db, retention=timedelta(0), batch_size=2, now=LATER)
    assert deleted == before
    assert not any((await counts(api)).values())


async def test_a_rebuild_brings_purged_rows_back_only_as_expired(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import donjon.plugins.oidc.device as device

    settings = provider_of(api.runtime).settings
    # Long enough for the flow to finish on a loaded machine before anything expires.
    lifetime = timedelta(seconds=4)
    for name in (
        "AccessTokenLifetime",
        "IdTokenLifetime",
        "AuthRequestLifetime",
        "CodeLifetime",
        "RefreshTokenIdleLifetime",
        "RefreshTokenLifetime",
    ):
        monkeypatch.setattr(settings, name, lifetime)
    monkeypatch.setattr(device, "DEVICE_LIFETIME", lifetime)
    made = await some_of_everything(api, assertion_lifetime=4)
    await asyncio.sleep(4.5)
    await refused(api, made)
    deleted = await purge_expired(api.runtime.db, retention=timedelta(0), batch_size=1000)
    assert all(deleted.values()), deleted
    assert not any((await counts(api)).values())
    await refused(api, made)
    for projection in (
        AccessTokensProjection(),
        RefreshTokensProjection(),
        AuthRequestsProjection(),
        DeviceAuthsProjection(),
    ):
        await rebuild(api.runtime.db, api.runtime.store, projection, restart=True)
    rebuilt = await counts(api)
    assert rebuilt["oidc_access_tokens"] and rebuilt["oidc_refresh_tokens"], rebuilt
    await refused(api, made)
    again = await purge_expired(api.runtime.db, retention=timedelta(0), batch_size=1000)
    assert again["oidc_access_tokens"] == rebuilt["oidc_access_tokens"]
    assert not any((await counts(api)).values())


async def test_the_job_starts_and_stops_with_the_server(api: Api) -> None:
    from donjon.plugins.oidc import on_shutdown, on_startup

    provider = provider_of(api.runtime)
    on_startup(api.runtime)
    task = provider.purge_task
    assert task is not None and not task.done()
    await on_shutdown(api.runtime)
    assert provider.purge_task is None and task.cancelled()


def test_purge_settings_are_checked() -> None:
    from donjon.core.settings import InvalidSetting
    from donjon.plugins.oidc.settings import OIDCSettings

    for bad in (
        {"PurgeBatchSize": 0},
        {"PurgeRetention": timedelta(seconds=-1)},
        {"PurgeInterval": timedelta(0)},
    ):
        with pytest.raises(InvalidSetting) as caught:
            OIDCSettings(**bad)  # type: ignore[arg-type]
        assert caught.value.key == next(iter(bad))
