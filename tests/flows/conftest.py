"""A real donjon for end-to-end tests: `donjon start-from-init` in a subprocess.

`donjon_server` starts it on a free port with a fresh store (once on SQLite,
once on PostgreSQL), a first instance whose service account's PAT is written
to a file, and cheap password hashing; it waits for /debug/ready and stops
the process (SIGTERM) afterwards. Tests talk to it over HTTP with real
clients, such as ZITADEL's Python SDK.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database, require_postgres

DONJON = Path(sys.executable).parent / "donjon"
MASTERKEY = "0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DonjonServer:
    url: str
    port: int
    pat: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def donjon(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another `donjon` command against the same store and configuration."""
        return subprocess.run(
            [str(DONJON), *args], env=self.env, capture_output=True, text=True, timeout=60
        )


def start_donjon(
    tmp: Path, database: dict[str, str], extra_env: dict[str, str] | None = None
) -> DonjonServer:
    port = free_port()
    env = {
        **os.environ,
        "DONJON_PORT": str(port),
        "DONJON_LISTENADDRESS": "127.0.0.1",
        "DONJON_EXTERNALPORT": str(port),
        "DONJON_EXTERNALDOMAIN": "localhost",
        "DONJON_MASTERKEY": MASTERKEY,
        "DONJON_FIRSTINSTANCE_ORG_MACHINE_MACHINE_USERNAME": "admin-sa",
        "DONJON_FIRSTINSTANCE_ORG_MACHINE_PAT_PATH": str(tmp / "admin.pat"),
        "DONJON_SYSTEMDEFAULTS_PASSWORDHASHER_HASHER_TIME": "1",
        "DONJON_SYSTEMDEFAULTS_PASSWORDHASHER_HASHER_MEMORY": "1024",
        "DONJON_SHUTDOWNTIMEOUT": "5s",
        **database,
        **(extra_env or {}),
    }
    log = tmp / "donjon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DONJON), "start-from-init"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"donjon exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/debug/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"donjon did not get ready:\n{log.read_text()}")
        time.sleep(0.1)
    pat = (tmp / "admin.pat").read_text().strip()
    return DonjonServer(url, port, pat, env, log, process)


def stop_donjon(server: DonjonServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment variables selecting a fresh store: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        yield {"DONJON_DATABASE_SQLITE_PATH": str(tmp_path / "donjon.db")}
        return
    require_postgres()
    dsn = create_pg_database()
    try:
        yield {"DONJON_DATABASE_POSTGRES_DSN": dsn}
    finally:
        drop_pg_database(dsn)


@pytest.fixture
def donjon_server(tmp_path: Path, store_env: dict[str, str]) -> Iterator[DonjonServer]:
    server = start_donjon(tmp_path, store_env)
    try:
        yield server
    finally:
        stop_donjon(server)


def sdk(url: str, token: str) -> Any:
    """ZITADEL's official Python SDK, authenticated with a personal access token."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib's deprecation notice at import
        import zitadel_client

    return zitadel_client.Zitadel.with_access_token(url, token)
