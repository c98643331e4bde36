"""What the benchmarks share: throwaway databases, a donjon server process, the
machine's description, results.

PostgreSQL databases are created per run with a unique name on the server at
DONJON_BENCH_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/postgres)
and dropped afterwards; SQLite files live under bench/.data/ (gitignored).
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ADMIN_DSN = os.environ.get(
    "DONJON_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATA = Path(__file__).resolve().parent / ".data"
STORES = ("sqlite", "postgres")
DONJON = Path(sys.executable).parent / "donjon"
MASTERKEY = "0123456789abcdef0123456789abcdef"


def command() -> str:
    """The command line that started this run, as one would type it again."""
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def pg_connect_kwargs(dsn: str) -> dict[str, Any]:
    url = make_url(dsn)
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }


@asynccontextmanager
async def pg_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its DSN), dropped when the block ends."""
    name = f"donjon_bench_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(**pg_connect_kwargs(ADMIN_DSN))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(ADMIN_DSN).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(**pg_connect_kwargs(ADMIN_DSN))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "os": _os_name(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        conn = await asyncpg.connect(**pg_connect_kwargs(ADMIN_DSN), timeout=5)
        try:
            info["postgres"] = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        info["postgres"] = f"unreachable ({exc})"
    return info


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def save(benchmark: str, result: dict[str, Any]) -> Path:
    """Keep the result (command included) as JSON under bench/.data/results/."""
    folder = DATA / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def stores(value: str) -> list[str]:
    chosen = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STORES]
    if unknown or not chosen:
        expected = ",".join(STORES)
        raise SystemExit(f"--stores: expected a comma-separated subset of {expected}: {value!r}")
    return chosen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A donjon process on a fresh store, with a service account's PAT."""

    def __init__(
        self, store_env: dict[str, str], folder: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.pat_file = folder / "admin.pat"
        self.env = {
            **os.environ,
            "DONJON_PORT": str(self.port),
            "DONJON_LISTENADDRESS": "127.0.0.1",
            "DONJON_EXTERNALPORT": str(self.port),
            "DONJON_MASTERKEY": MASTERKEY,
            "DONJON_LOG_LEVEL": "warning",
            "DONJON_FIRSTINSTANCE_ORG_MACHINE_MACHINE_USERNAME": "bench-sa",
            "DONJON_FIRSTINSTANCE_ORG_MACHINE_PAT_PATH": str(self.pat_file),
            **store_env,
            **(extra_env or {}),
        }
        self.log = folder / "donjon.log"

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(DONJON), "start-from-init"], env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"donjon exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/debug/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise SystemExit(f"donjon did not get ready:\n{self.log.read_text()}")
            time.sleep(0.1)
        self.pat = self.pat_file.read_text().strip()
        self.headers = {"Authorization": f"Bearer {self.pat}"}
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
