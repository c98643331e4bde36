"""Durable delivery with real `donjon start` processes: a SIGKILL mid-delivery loses
nothing, and two processes on one PostgreSQL deliver each event once."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.actions.conftest import ACTIONS
from tests.actions.receiver import Receiver
from tests.conftest import create_pg_database, drop_pg_database, require_postgres
from tests.flows.conftest import DonjonServer, start_donjon, stop_donjon

pytestmark = pytest.mark.slow

ACTIONS_ENV = {
    "DONJON_ACTIONS_HTTP_ALLOWEDHOSTS": "127.0.0.1",
    "DONJON_ACTIONS_LEASEMARGIN": "1s",
    "DONJON_ACTIONS_REQUEUEEVERY": "200ms",
    "DONJON_ACTIONS_RETRYFIRSTAFTER": "100ms",
}


def call(server: DonjonServer, method: str, body: dict, service: str = ACTIONS) -> dict:
    r = httpx.post(
        f"{server.url}/{service}/{method}",
        json=body,
        headers={"authorization": f"Bearer {server.pat}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def add_human(server: DonjonServer, username: str) -> str:
    body = {
        "username": username,
        "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
    }
    return call(server, "AddHumanUser", body, "zitadel.user.v2.UserService")["userId"]


def bind(server: DonjonServer, receiver: Receiver, timeout: str) -> None:
    target = call(
        server,
        "CreateTarget",
        {"name": "r", "endpoint": receiver.url, "timeout": timeout, "restAsync": {}},
    )
    call(
        server,
        "SetExecution",
        {"condition": {"event": {"event": "user.human.added"}}, "targets": [target["id"]]},
    )


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {"DONJON_DATABASE_SQLITE_PATH": str(tmp_path / "donjon.db")}
        return
    require_postgres()
    dsn = create_pg_database()
    try:
        yield {"DONJON_DATABASE_POSTGRES_DSN": dsn}
    finally:
        drop_pg_database(dsn)


def test_a_sigkill_mid_delivery_loses_nothing(
    tmp_path: Path, store_env: dict[str, str], receiver: Receiver
) -> None:
    first = start_donjon(tmp_path, {**store_env, **ACTIONS_ENV})
    try:
        receiver.delay = 60  # the first attempt is never answered: donjon dies during it
        bind(first, receiver, "5s")
        add_human(first, "killed")
        wait_until(lambda: receiver.arrivals, 20, "the first attempt")
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    finally:
        if first.process.poll() is None:
            first.process.kill()
    receiver.delay = 0
    killed = json.loads(receiver.arrivals[0])
    assert killed["event_payload"]["username"] == "killed"
    second = start_donjon(tmp_path, {**store_env, **ACTIONS_ENV})
    try:
        # Once the lease (5 s timeout + 1 s) has run out, the restarted donjon delivers again.
        wait_until(lambda: receiver.delivered(), 40, "the delivery after the restart")
        time.sleep(1)
    finally:
        stop_donjon(second)
    [answered] = receiver.delivered()
    assert answered.json["eventId"] == killed["eventId"]
    assert len(receiver.arrivals) == 2


def test_two_processes_on_one_postgres_deliver_each_event_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    require_postgres()
    dsn = create_pg_database()
    servers: list[DonjonServer] = []
    try:
        env = {"DONJON_DATABASE_POSTGRES_DSN": dsn, **ACTIONS_ENV}
        servers.append(start_donjon(tmp_path, env))
        # The second finds the first instance made: its token is the first one's.
        servers.append(start_donjon(tmp_path, env))
        bind(servers[0], receiver, "5s")
        count = 30
        for i in range(count):
            add_human(servers[i % 2], f"user{i}")
        wait_until(lambda: len(receiver.delivered()) >= count, 60, f"{count} deliveries")
        time.sleep(2)  # room for a duplicate to show up
    finally:
        for server in servers:
            stop_donjon(server)
        drop_pg_database(dsn)
    ids = [r.json["eventId"] for r in receiver.delivered()]
    assert len(ids) == count and len(set(ids)) == count
    assert len(receiver.arrivals) == count
