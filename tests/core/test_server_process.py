"""Serving for real: uvicorn in this process, and `donjon start` as a subprocess.

Graceful shutdown is what these pin: a request in flight when SIGTERM arrives
is answered, the async projection runner stops, the process exits 0 within
ShutdownTimeout. The subprocesses load the test plugin (slow route, async
projection) through an entry point on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from donjon.core.database import Database
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.server import Server, server_config
from donjon.core.settings import Settings
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import make_settings, postgres_database, sqlite_database
from tests.core.test_server_support import MASTERKEY, entry_point_dir, plugin_manager

REPO = Path(__file__).parents[2]
DONJON = Path(sys.executable).parent / "donjon"
HOST = {"host": "localhost"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def served_runtime(settings: Settings) -> Runtime:
    runtime = build_runtime(settings, pm=plugin_manager(settings), masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    return runtime


# -- uvicorn in this process ------------------------------------------------------------


class RunningServer:
    """A `donjon.core.server.Server` serving `runtime` (on its ListenAddress and Port)."""

    def __init__(self, runtime: Runtime) -> None:
        self.server = Server(server_config(runtime))
        self.task: asyncio.Task[None] | None = None
        self.url = f"http://127.0.0.1:{runtime.settings.Port}"

    async def __aenter__(self) -> RunningServer:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            await asyncio.sleep(0.02)
        raise AssertionError("the server did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


def in_process_settings(tmp_path: Path, shutdown_timeout: str) -> Settings:
    return make_settings(
        sqlite_database(tmp_path / "donjon.db"),
        Port=free_port(),
        ListenAddress="127.0.0.1",
        ShutdownTimeout=shutdown_timeout,
    )


@pytest.mark.anyio
async def test_a_request_in_flight_is_answered_before_the_server_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = await served_runtime(in_process_settings(tmp_path, "5s"))
    caplog.set_level(logging.INFO)
    async with RunningServer(runtime) as running:
        async with httpx.AsyncClient(base_url=running.url, headers=HOST, timeout=10) as client:
            slow = asyncio.create_task(client.get("/test/slow", params={"seconds": 1}))
            await asyncio.sleep(0.3)
            running.server.handle_exit(signal.SIGTERM, None)  # what uvicorn's SIGTERM handler calls
            response = await slow
        assert running.task is not None
        await asyncio.wait_for(running.task, 5)

        assert response.status_code == 200 and response.json() == {"slept": 1.0}
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=running.url, headers=HOST) as client:
                await client.get("/debug/healthz")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("SIGTERM received: shutting down") for m in messages)
    order = [m for m in messages if m in ("Shutting down", "async projection runner stopped")]
    assert order == ["Shutting down", "async projection runner stopped"]


@pytest.mark.anyio
async def test_requests_outlasting_the_shutdown_timeout_are_cancelled(tmp_path: Path) -> None:
    runtime = await served_runtime(in_process_settings(tmp_path, "500ms"))
    async with RunningServer(runtime) as running:
        async with httpx.AsyncClient(base_url=running.url, headers=HOST, timeout=5) as client:
            slow = asyncio.create_task(client.get("/test/slow", params={"seconds": 30}))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            running.server.handle_exit(signal.SIGTERM, None)
            assert running.task is not None
            await asyncio.wait_for(running.task, 5)
            stopped_after = time.monotonic() - started
            try:
                outcome: Any = (await slow).status_code
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__

    assert 0.4 < stopped_after < 2.5
    assert outcome != 200


# -- `donjon` as a subprocess -------------------------------------------------------------


class DonjonProcess:
    """`donjon <command>` with the test plugin installed, its stderr in a file."""

    def __init__(
        self, tmp_path: Path, command: str, config: dict[str, Any], name: str = "donjon"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_file = tmp_path / f"{name}.yaml"
        config_file.write_text(yaml.safe_dump({"ListenAddress": "127.0.0.1", **config}))
        key_file = tmp_path / "masterkey"
        key_file.write_bytes(MASTERKEY)
        self.log_file = tmp_path / f"{name}.log"
        plugin_dir = tmp_path / "plugin"
        if not plugin_dir.exists():
            entry_point_dir(plugin_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DONJON_")}
        env["DONJON_PORT"] = str(self.port)
        env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), str(REPO)])
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(DONJON),
                    command,
                    "--masterkeyFile",
                    str(key_file),
                    "--config",
                    str(config_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"donjon exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.url}/debug/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"donjon was not ready within {timeout}s:\n{self.output()}")

    def terminate(self, timeout: float) -> int:
        """SIGTERM, then the exit status (fails when it takes longer than `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(
                f"donjon did not exit within {timeout}s:\n{self.output()}"
            ) from None

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def processes() -> Iterator[list[DonjonProcess]]:
    started: list[DonjonProcess] = []
    yield started
    for process in started:
        process.kill()


@pytest.mark.slow
def test_start_from_init_serves_on_uvloop_and_httptools_with_json_logs(
    tmp_path: Path, processes: list[DonjonProcess]
) -> None:
    config = {
        "Database": {"sqlite": {"Path": str(tmp_path / "donjon.db")}},
        "Log": {"Format": "json"},
        "ShutdownTimeout": "5s",
    }
    donjon = DonjonProcess(tmp_path, "start-from-init", config)
    processes.append(donjon)
    donjon.wait_ready()

    given = httpx.get(f"{donjon.url}/test/log", headers={**HOST, "x-request-id": "sub-1"})
    generated = httpx.get(f"{donjon.url}/test/instance", headers=HOST)
    status = donjon.terminate(timeout=10)

    assert given.status_code == 200 and given.headers["x-request-id"] == "sub-1"
    assert generated.status_code == 200 and len(generated.headers["x-request-id"]) == 32
    assert status == 0, donjon.output()
    entries = [json.loads(line) for line in donjon.output().splitlines()]  # every line is JSON
    messages = [e["msg"] for e in entries]
    assert any("(event loop uvloop, HTTP parser httptools)" in m for m in messages), messages
    inside = next(e for e in entries if e["msg"] == "inside the test route")
    access = next(
        e for e in entries if e["logger"] == "donjon.http" and e.get("path") == "/test/log"
    )
    assert inside["request_id"] == access["request_id"] == "sub-1"
    assert access["status"] == 200
    generated_access = next(e for e in entries if e.get("path") == "/test/instance")
    assert generated_access["request_id"] == generated.headers["x-request-id"]
    assert "Shutting down" in messages and "async projection runner stopped" in messages


@pytest.mark.slow
@pytest.mark.anyio
async def test_start_answers_the_request_in_flight_and_exits_0_on_sigterm(
    tmp_path: Path, processes: list[DonjonProcess]
) -> None:
    database = sqlite_database(tmp_path / "donjon.db")
    runtime = await served_runtime(make_settings(database))
    await runtime.close()
    donjon = DonjonProcess(tmp_path, "start", {"Database": database, "ShutdownTimeout": "5s"})
    processes.append(donjon)
    await asyncio.to_thread(donjon.wait_ready)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            httpx.get, f"{donjon.url}/test/slow?seconds=1.5", headers=HOST, timeout=10
        )
        await asyncio.sleep(0.4)
        sent = time.monotonic()
        status = await asyncio.to_thread(donjon.terminate, 10)
        stopped_after = time.monotonic() - sent
        response = slow.result()

    assert response.status_code == 200 and response.json() == {"slept": 1.5}
    assert status == 0, donjon.output()
    assert stopped_after < 5
    output = donjon.output()
    for line in (
        "SIGTERM received: shutting down (requests in flight get up to 5s)",
        "Shutting down",
        "async projection runner stopped",
        "server stopped",
    ):
        assert line in output, output


async def initialise(database: dict[str, Any]) -> None:
    """What `donjon init` does: the tables (`donjon start` refuses a store without them)."""
    db = Database.from_settings(make_settings(database).Database)
    try:
        await create_tables(db)
    finally:
        await db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_share_one_postgresql_database(
    tmp_path: Path, pg_dsn: str, processes: list[DonjonProcess]
) -> None:
    config = {"Database": postgres_database(pg_dsn), "ShutdownTimeout": "5s"}
    asyncio.run(initialise(config["Database"]))
    # Started together: `start` serves at once and turns ready when the other's setup is done.
    first = DonjonProcess(tmp_path, "start-from-init", config, name="first")
    second = DonjonProcess(tmp_path, "start", config, name="second")
    processes.extend([first, second])
    first.wait_ready()
    second.wait_ready()

    answers = [httpx.get(f"{p.url}/test/instance", headers=HOST).json() for p in (first, second)]
    assert answers[0] == answers[1] and answers[0]["instance_id"]
    assert first.terminate(timeout=10) == 0, first.output()
    assert httpx.get(f"{second.url}/debug/ready").status_code == 200
    assert second.terminate(timeout=10) == 0, second.output()
    assert "async projection runner stopped" in second.output()
