"""Function executions: preaccesstoken and preuserinfo targets add claims to JWT access
tokens and userinfo answers; reserved claims stay; interruptOnError refuses the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.actions.conftest import ACTIONS
from tests.actions.receiver import Receiver
from tests.api.conftest import Api, Template, api_settings_for
from tests.plugins.oidc.support import API_SCOPE, client_credentials, machine, token

pytestmark = pytest.mark.anyio


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


async def bind_function(api: Api, url: str, name: str, kind: dict[str, Any]) -> None:
    target = await api.ok(
        ACTIONS,
        "CreateTarget",
        {"name": name, "endpoint": url, "timeout": "2s", **kind},
    )
    await api.ok(
        ACTIONS,
        "SetExecution",
        {"condition": {"function": {"name": name}}, "targets": [target["id"]]},
    )


CLAIMS = {
    "appendClaims": [
        {"key": "department", "value": "it"},
        {"key": "sub", "value": "someone-else"},
        {"key": "urn:zitadel:iam:user:resourceowner:id", "value": "forged"},
    ]
}


async def test_preaccesstoken_adds_claims_but_never_reserved_ones(
    api: Api, receiver: Receiver
) -> None:
    await bind_function(api, receiver.url, "preaccesstoken", {"restCall": {}})
    receiver.answer = CLAIMS
    bot = await machine(api, "fn-bot", token_type="jwt")
    body = await client_credentials(api, bot, f"openid {API_SCOPE}")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["department"] == "it"
    assert claims["sub"] == bot.user_id
    assert "urn:zitadel:iam:user:resourceowner:id" not in claims
    [got] = receiver.requests
    assert got.json["function"] == "function/preaccesstoken"
    assert got.json["userID"] == bot.user_id and got.json["clientID"] == "fn-bot"


async def test_preuserinfo_adds_claims_to_userinfo(api: Api, receiver: Receiver) -> None:
    await bind_function(api, receiver.url, "preuserinfo", {"restCall": {}})
    receiver.answer = CLAIMS
    bot = await machine(api, "info-bot")
    access = (await client_credentials(api, bot, f"openid {API_SCOPE}"))["access_token"]
    info = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    assert info.status_code == 200, info.text
    assert info.json()["department"] == "it"
    assert info.json()["sub"] == bot.user_id


async def test_interrupt_on_error_decides_whether_a_failing_function_refuses_the_token(
    api: Api, receiver: Receiver
) -> None:
    await bind_function(api, receiver.url, "preaccesstoken", {"restCall": {}})
    bot = await machine(api, "fail-bot", token_type="jwt")
    receiver.statuses = [500]
    body = await client_credentials(api, bot, f"openid {API_SCOPE}")
    assert "department" not in jwt.decode(body["access_token"], options={"verify_signature": False})
    listed = await api.ok(ACTIONS, "ListTargets", {})
    await api.ok(
        ACTIONS,
        "UpdateTarget",
        {"id": listed["targets"][0]["id"], "restCall": {"interruptOnError": True}},
    )
    receiver.delay = 3  # beyond the target's 2 s timeout
    r = await token(
        api, {"grant_type": "client_credentials", "scope": f"openid {API_SCOPE}"},
        auth=bot.basic(),
    )  # fmt: skip
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "access_denied"
    assert "no answer within 2s" in r.json()["error_description"]


async def test_set_user_metadata_in_an_answer_is_set_on_the_user(
    api: Api, receiver: Receiver
) -> None:
    await bind_function(api, receiver.url, "preuserinfo", {"restCall": {}})
    receiver.answer = {
        "appendClaims": [{"key": "team", "value": "blue"}],
        "setUserMetadata": [{"key": "last_app", "value": "aW5mby1ib3Q="}],  # "info-bot"
    }
    bot = await machine(api, "meta-bot")
    access = (await client_credentials(api, bot, f"openid {API_SCOPE}"))["access_token"]
    info = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    assert info.status_code == 200, info.text
    assert info.json()["team"] == "blue"
    listed = await api.ok(
        "zitadel.user.v2.UserService", "ListUserMetadata", {"userId": bot.user_id}
    )
    assert listed["metadata"] == [{"key": "last_app", "value": "aW5mby1ib3Q="}]


async def test_bad_set_user_metadata_counts_as_a_failed_target(
    api: Api, receiver: Receiver
) -> None:
    await bind_function(api, receiver.url, "preuserinfo", {"restCall": {"interruptOnError": True}})
    receiver.answer = {"setUserMetadata": [{"key": "k", "value": "not base64!"}]}
    bot = await machine(api, "badmeta-bot")
    access = (await client_credentials(api, bot, f"openid {API_SCOPE}"))["access_token"]
    info = await api.client.get("/oidc/v1/userinfo", headers={"authorization": f"Bearer {access}"})
    assert info.status_code == 403, info.text
    assert "base64" in info.text
    listed = await api.ok(
        "zitadel.user.v2.UserService", "ListUserMetadata", {"userId": bot.user_id}
    )
    assert listed.get("metadata", []) == []
