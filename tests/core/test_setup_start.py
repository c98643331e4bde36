"""`donjon start-from-init` and `start-from-setup`: one command from an empty store (or
an initialised one) to a server that is ready, and SIGTERM stops it with status 0."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from donjon.core.database import Database
from donjon.core.setup.init import create_tables
from tests.conftest import MASTERKEY, postgres_database, sqlite_database
from tests.core.test_setup_support import Donjon, free_port, query, write_config

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, command: str, database: dict[str, Any]) -> tuple[Donjon, str]:
    port = free_port()
    config = write_config(
        tmp_path / "donjon.yaml", database, ListenAddress="127.0.0.1", ShutdownTimeout="5s"
    )
    key = tmp_path / "masterkey"
    key.write_bytes(MASTERKEY)
    process = Donjon(
        tmp_path,
        command,
        "--config",
        str(config),
        "--masterkeyFile",
        str(key),
        env={"DONJON_PORT": str(port)},
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: Donjon, url: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(
                f"donjon exited with {process.process.returncode}:\n{process.output()}"
            )
        try:
            if httpx.get(f"{url}/debug/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout}s:\n{process.output()}")


def test_start_from_init_on_an_empty_sqlite_path_serves_ready_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    database = sqlite_database(tmp_path / "new" / "donjon.db")
    process, url = serve(tmp_path, "start-from-init", database)
    try:
        wait_ready(process, url)
        assert process.terminate(timeout=20) == 0, process.output()
    finally:
        process.kill()
    output = process.output()
    assert "database initialised (sqlite)" in output and "setup completed" in output
    assert query(database, "SELECT name FROM instances") == [("donjon",)]


@pytest.mark.postgres
def test_start_from_setup_on_an_initialised_postgresql_serves_ready_and_exits_0_on_sigterm(
    tmp_path: Path, pg_dsn: str
) -> None:
    async def init() -> None:
        db = Database.postgres(pg_dsn)
        try:
            await create_tables(db)
        finally:
            await db.dispose()

    asyncio.run(init())
    database = postgres_database(pg_dsn)
    process, url = serve(tmp_path, "start-from-setup", database)
    try:
        wait_ready(process, url)
        assert process.terminate(timeout=20) == 0, process.output()
    finally:
        process.kill()
    assert "setup completed" in process.output()
    assert query(database, "SELECT name FROM instances") == [("donjon",)]
