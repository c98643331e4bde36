"""The in-process cache of targets and executions that functions and request/response
executions read: no database read per call, a change through this process applies to the
next call, one through another process within Actions.ExecutionCacheTTL (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from donjon.actions import executions
from donjon.actions.worker import cache_of
from tests.actions.conftest import ACTIONS
from tests.actions.receiver import Receiver
from tests.api.conftest import Api, Template, api_settings_for
from tests.plugins.oidc.support import API_SCOPE, client_credentials, machine

pytestmark = pytest.mark.anyio

TTL = 0.3


@pytest.fixture
def api_settings(api_store: Template, tmp_path: Path) -> Any:
    settings = api_settings_for(api_store.database, tmp_path / "admin.pat")
    settings.Actions.HTTP.AllowedHosts = ["127.0.0.1"]
    settings.Actions.ExecutionCacheTTL = timedelta(minutes=5)  # a test may shorten it
    return settings


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    a, b = Receiver().start(), Receiver().start()
    a.answer = {"appendClaims": [{"key": "via", "value": "a"}]}
    b.answer = {"appendClaims": [{"key": "via", "value": "b"}]}
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(autouse=True)
async def close_clients(api: Api) -> Any:
    yield
    from donjon.actions.worker import close_client

    await close_client(api.runtime)


async def userinfo(api: Api, access: str) -> dict[str, Any]:
    r = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_function_calls_read_the_store_once_and_see_this_process_changes_at_once(
    api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    a, b = receivers
    target = await api.ok(
        ACTIONS,
        "CreateTarget",
        {"name": "claims", "endpoint": a.url, "timeout": "2s", "restCall": {}},
    )
    await api.ok(
        ACTIONS,
        "SetExecution",
        {"condition": {"function": {"name": "preuserinfo"}}, "targets": [target["id"]]},
    )
    bot = await machine(api, "cache-bot")
    access = (await client_credentials(api, bot, f"openid {API_SCOPE}"))["access_token"]
    cache = cache_of(api.runtime)
    assert cache.ttl == 300
    assert (await userinfo(api, access))["via"] == "a"
    loads = cache.loads
    for _ in range(5):
        assert (await userinfo(api, access))["via"] == "a"
    assert cache.loads == loads  # served from memory
    assert len(a.requests) == 6

    # An UpdateTarget through this process applies to the very next call, TTL or not.
    await api.ok(ACTIONS, "UpdateTarget", {"id": target["id"], "endpoint": b.url})
    assert (await userinfo(api, access))["via"] == "b"
    # Unbinding it too.
    await api.ok(
        ACTIONS, "SetExecution", {"condition": {"function": {"name": "preuserinfo"}}, "targets": []}
    )
    assert "via" not in await userinfo(api, access)
    assert len(b.requests) == 1


async def test_a_change_made_by_another_process_applies_within_the_ttl(
    api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    a, _ = receivers
    target = await api.ok(
        ACTIONS,
        "CreateTarget",
        {"name": "claims", "endpoint": a.url, "timeout": "2s", "restCall": {}},
    )
    condition = {"function": {"name": "preuserinfo"}}
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [target["id"]]})
    bot = await machine(api, "other-bot")
    cache_of(api.runtime).ttl = TTL
    access = (await client_credentials(api, bot, f"openid {API_SCOPE}"))["access_token"]
    assert (await userinfo(api, access))["via"] == "a"

    # Another process removes the execution: its push does not reach this process's
    # listeners (push_in inside a transaction, as a second process's store would be).
    state = await executions.ExecutionState.load(
        api.runtime.store, api.instance_id, "function/preuserinfo"
    )
    async with api.runtime.db.write() as conn:
        await api.runtime.store.push_in(conn, [executions.set_execution(state, [])], creator="x")
    assert (await userinfo(api, access))["via"] == "a"  # still the cached snapshot
    await asyncio.sleep(TTL + 0.1)
    assert "via" not in await userinfo(api, access)


async def test_management_calls_without_executions_do_not_read_them_each_time(
    api: Api, receivers: tuple[Receiver, Receiver]
) -> None:
    a, _ = receivers
    cache = cache_of(api.runtime)
    await api.ok("user", "ListUsers", {})
    loads = cache.loads
    for _ in range(5):
        await api.ok("user", "ListUsers", {})
    assert cache.loads == loads
    # A request execution bound through this process runs on the next call.
    target = await api.ok(
        ACTIONS,
        "CreateTarget",
        {"name": "hook", "endpoint": a.url, "timeout": "2s", "restWebhook": {}},
    )
    await api.ok(
        ACTIONS,
        "SetExecution",
        {
            "condition": {"request": {"method": "/zitadel.user.v2.UserService/ListUsers"}},
            "targets": [target["id"]],
        },
    )
    await api.ok("user", "ListUsers", {})
    assert [r.json["fullMethod"] for r in a.requests] == ["/zitadel.user.v2.UserService/ListUsers"]


async def test_each_runtime_has_its_own_cache_and_client_living_with_it(api: Api) -> None:
    # They used to sit in tables keyed by id(runtime): a runtime made at a freed
    # runtime's address got its cache, bound to a database that no longer existed.
    from donjon.actions.worker import client_of

    cache, client = cache_of(api.runtime), client_of(api.runtime)
    assert cache.db is api.runtime.db
    assert cache_of(api.runtime) is cache and client_of(api.runtime) is client
    assert vars(api.runtime)["_donjon_actions_cache"] is cache
