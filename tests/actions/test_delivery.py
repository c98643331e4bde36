"""Durable event executions in one process: a real receiver on loopback, the outbox
driven step by step (enqueue, deliver) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from donjon.actions.outbound import TargetClient
from donjon.actions.outbox import PENDING, Outbox, deliveries_table
from donjon.actions.signing import verify_signature
from tests.actions.conftest import ACTIONS
from tests.actions.receiver import Receiver
from tests.api.conftest import Api, Template, api_settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def api_settings(api_store: Template, tmp_path: Path) -> Any:
    """The API's settings with loopback allowed and quick retries, at most 3 attempts."""
    settings = api_settings_for(api_store.database, tmp_path / "admin.pat")
    actions = settings.Actions
    actions.HTTP.AllowedHosts = ["127.0.0.1"]
    actions.MaxAttempts = 3
    actions.RetryFirstAfter = actions.RetryFirstAfter / 1000  # 1 ms
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
async def outbox(api: Api) -> Any:
    rt = api.runtime
    client = TargetClient(rt.keys, rt.settings.Actions.HTTP.AllowedHosts)
    yield Outbox(rt.db, rt.store, rt.settings.Actions, client)
    await client.close()


async def drain(outbox: Outbox, rounds: int = 200) -> None:
    """Enqueue and deliver until no delivery is pending (retries included)."""
    for _ in range(rounds):
        while await outbox.enqueue():
            pass
        await outbox.deliver()
        async with outbox.db.read() as conn:
            pending = (
                await conn.execute(select(func.count()).where(deliveries_table.c.status == PENDING))
            ).scalar_one()
        if not pending:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("deliveries still pending")


async def bind(api: Api, url: str, condition: dict[str, Any], **kind: Any) -> dict[str, Any]:
    target = await api.ok(
        ACTIONS,
        "CreateTarget",
        {"name": "receiver", "endpoint": url, "timeout": "5s", **(kind or {"restAsync": {}})},
    )
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [target["id"]]})
    return target


async def add_human(api: Api, username: str) -> str:
    body = {
        "username": username,
        "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
    }
    return (await api.ok("user", "AddHumanUser", body))["userId"]


async def test_events_are_delivered_signed_with_their_event_id(
    api: Api, receiver: Receiver, outbox: Outbox
) -> None:
    target = await bind(api, receiver.url, {"event": {"event": "user.human.added"}})
    user_id = await add_human(api, "alice")
    await drain(outbox)
    [got] = receiver.delivered()
    verify_signature(got.body, got.headers["donjon-signature"], target["signingKey"])
    body = got.json
    assert body["event_type"] == "user.human.added"
    assert body["aggregateID"] == user_id
    assert body["instanceID"] == api.instance_id
    assert body["eventId"] and body["event_payload"]["username"] == "alice"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_events_before_the_execution_and_of_other_types_are_not_delivered(
    api: Api, receiver: Receiver, outbox: Outbox
) -> None:
    await add_human(api, "before")
    await bind(api, receiver.url, {"event": {"group": "user.human"}})
    await api.ok("org", "AddOrganization", {"name": "Other Org"})
    user_id = await add_human(api, "after")
    await drain(outbox)
    got = [r.json for r in receiver.delivered()]
    assert {g["aggregateID"] for g in got} == {user_id}
    assert all(g["event_type"].startswith("user.human.") for g in got)


async def test_an_aggregates_events_arrive_in_order_through_retries(
    api: Api, receiver: Receiver, outbox: Outbox
) -> None:
    await bind(api, receiver.url, {"event": {"all": True}})
    user_id = await add_human(api, "carol")
    for name in ("c1", "c2", "c3"):
        await api.ok("user", "UpdateHumanUser", {"userId": user_id, "username": name})
    receiver.statuses = [500, 500]  # the first two attempts fail
    await drain(outbox)
    mine = [r.json for r in receiver.requests if r.json["aggregateID"] == user_id]
    delivered = [r["sequence"] for r, q in zip(mine, receiver.requests, strict=False)]
    ok = [r.json["sequence"] for r in receiver.delivered() if r.json["aggregateID"] == user_id]
    assert ok == sorted(ok) and len(ok) == len(set(ok)) >= 4
    # The failed attempts were of the first event, retried before any later one.
    assert delivered[:3] == [ok[0]] * 3


async def test_a_receiver_that_is_down_gets_everything_once_back(
    api: Api, receiver: Receiver, outbox: Outbox
) -> None:
    await bind(api, receiver.url, {"event": {"event": "user.human.added"}})
    receiver.stop()
    for i in range(3):
        await add_human(api, f"down{i}")
    while await outbox.enqueue():
        pass
    await outbox.deliver()  # connection refused: one failed attempt each
    listed = await api.ok(ACTIONS, "ListEventDeliveries", {})
    assert listed["pagination"]["totalResult"] == "3"
    assert all(d["attempts"] == 1 and d["lastError"] for d in listed["deliveries"])
    receiver.start()  # same port
    await drain(outbox)
    assert sorted(r.json["event_payload"]["username"] for r in receiver.delivered()) == [
        "down0",
        "down1",
        "down2",
    ]
    assert (await api.ok(ACTIONS, "ListEventDeliveries", {}))["deliveries"] == []


async def test_failing_deliveries_are_parked_visible_and_redriven(
    api: Api, receiver: Receiver, outbox: Outbox
) -> None:
    target = await bind(api, receiver.url, {"event": {"event": "user.human.added"}})
    receiver.statuses = [500] * 3
    await add_human(api, "parked")
    await drain(outbox)
    assert receiver.delivered() == []
    listed = await api.ok(ACTIONS, "ListEventDeliveries", {"state": "EVENT_DELIVERY_STATE_PARKED"})
    [parked] = listed["deliveries"]
    assert parked["attempts"] == 3 and parked["lastStatus"] == 500
    assert "status 500" in parked["lastError"]
    assert parked["targetId"] == target["id"] and parked["eventType"] == "user.human.added"
    redriven = await api.ok(ACTIONS, "RedriveEventDeliveries", {"deliveryIds": [parked["id"]]})
    assert redriven == {"redriven": "1"}
    await drain(outbox)
    [got] = receiver.delivered()
    assert got.json["eventId"] == parked["eventId"]


async def test_redirects_are_not_followed(api: Api, receiver: Receiver, outbox: Outbox) -> None:
    await bind(api, receiver.url, {"event": {"event": "user.human.added"}})
    receiver.statuses = [302] * 3
    await add_human(api, "redirected")
    await drain(outbox)
    [parked] = (await api.ok(ACTIONS, "ListEventDeliveries", {}))["deliveries"]
    assert "redirect" in parked["lastError"]
    assert len(receiver.requests) == 3  # nothing reached the Location


async def test_the_running_worker_delivers_an_aggregates_events_without_idling(
    api: Api, receiver: Receiver
) -> None:
    from donjon.actions import worker

    api.runtime.settings.Actions.RequeueEvery = api.runtime.settings.Actions.RequeueEvery * 60
    await worker.start(api.runtime)  # what on_startup does in `donjon start`
    try:
        await bind(api, receiver.url, {"event": {"group": "user"}})
        user_id = await add_human(api, "busy")
        for name in ("b1", "b2", "b3", "b4"):
            await api.ok("user", "UpdateHumanUser", {"userId": user_id, "username": name})
        # Each delivery lets the next event of the aggregate go at once: no 60 s waits.
        got = await asyncio.to_thread(receiver.wait_for, 5, 15)
    finally:
        await worker.stop(api.runtime)
    sequences = [r.json["sequence"] for r in got]
    assert sequences == sorted(sequences)
