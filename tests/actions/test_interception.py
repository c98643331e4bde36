"""Request and response executions around management API methods, with a real
receiver on loopback (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from donjon.actions.signing import verify_signature
from tests.actions.conftest import ACTIONS
from tests.actions.receiver import Receiver
from tests.api.conftest import Api, Template, api_settings_for

pytestmark = pytest.mark.anyio

ADD_HUMAN = "/zitadel.user.v2.UserService/AddHumanUser"


@pytest.fixture
def api_settings(api_store: Template, tmp_path: Path) -> Any:
    settings = api_settings_for(api_store.database, tmp_path / "admin.pat")
    settings.Actions.HTTP.AllowedHosts = ["127.0.0.1"]
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
async def close_clients(api: Api) -> Any:
    yield
    from donjon.actions.worker import close_client

    await close_client(api.runtime)


def human(username: str) -> dict[str, Any]:
    return {
        "username": username,
        "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
    }


async def bind(
    api: Api, url: str, condition: dict[str, Any], kind: dict[str, Any], name: str = "t"
) -> dict[str, Any]:
    target = await api.ok(
        ACTIONS, "CreateTarget", {"name": name, "endpoint": url, "timeout": "5s", **kind}
    )
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [target["id"]]})
    return target


async def usernames(api: Api) -> set[str]:
    listed = await api.ok("user", "ListUsers", {})
    return {u["username"] for u in listed["result"]}


async def test_a_call_target_rewrites_the_request(api: Api, receiver: Receiver) -> None:
    target = await bind(api, receiver.url, {"request": {"method": ADD_HUMAN}}, {"restCall": {}})
    receiver.answer = human("rewritten")
    await api.ok("user", "AddHumanUser", human("original"))
    names = await usernames(api)
    assert "rewritten" in names and "original" not in names
    [got] = receiver.requests
    verify_signature(got.body, got.headers["donjon-signature"], target["signingKey"])
    assert got.json["fullMethod"] == ADD_HUMAN
    assert got.json["userID"] == api.admin_id and got.json["instanceID"] == api.instance_id
    assert got.json["request"]["username"] == "original"


async def test_a_call_target_refuses_with_its_connect_error(api: Api, receiver: Receiver) -> None:
    await bind(
        api,
        receiver.url,
        {"request": {"service": "zitadel.user.v2.UserService"}},
        {"restCall": {"interruptOnError": True}},
    )
    receiver.statuses = [400]
    receiver.answer = {"code": "invalid_argument", "message": "username: not on our list"}
    status, code, message = await api.error("user", "AddHumanUser", human("mallory"))
    assert (status, code, message) == (400, "invalid_argument", "username: not on our list")
    assert "mallory" not in await usernames(api)


async def test_interrupt_on_error_decides_whether_a_failing_webhook_stops_the_call(
    api: Api, receiver: Receiver
) -> None:
    target = await bind(api, receiver.url, {"request": {"all": True}}, {"restWebhook": {}})
    receiver.statuses = [500]
    await api.ok("user", "AddHumanUser", human("goes-on"))
    await api.ok(
        ACTIONS, "UpdateTarget", {"id": target["id"], "restWebhook": {"interruptOnError": True}}
    )
    receiver.statuses = [503]
    status, code, message = await api.error("user", "AddHumanUser", human("stopped"))
    assert (status, code) == (400, "failed_precondition")
    assert "status 503" in message
    assert "goes-on" in await usernames(api) and "stopped" not in await usernames(api)


async def test_a_call_target_rewrites_the_response(api: Api, receiver: Receiver) -> None:
    await bind(api, receiver.url, {"response": {"method": ADD_HUMAN}}, {"restCall": {}})
    receiver.answer = {"userId": "hidden", "note": "from the target"}
    answer = await api.ok("user", "AddHumanUser", human("responded"))
    assert answer == {"userId": "hidden", "note": "from the target"}
    [got] = receiver.requests
    assert got.json["request"]["username"] == "responded"
    assert got.json["response"]["userId"] != "hidden"


async def test_the_action_service_is_never_intercepted(api: Api, receiver: Receiver) -> None:
    await bind(
        api,
        receiver.url,
        {"request": {"all": True}},
        {"restWebhook": {"interruptOnError": True}},
    )
    receiver.stop()  # every intercepted call now fails
    assert (await api.error("user", "AddHumanUser", human("blocked")))[1] == "failed_precondition"
    listed = await api.ok(ACTIONS, "ListExecutions", {})
    await api.ok(
        ACTIONS, "SetExecution", {"condition": listed["executions"][0]["condition"], "targets": []}
    )
    await api.ok("user", "AddHumanUser", human("unblocked"))
