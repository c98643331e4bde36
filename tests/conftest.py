"""Shared fixtures: settings for a fresh SQLite file or a fresh PostgreSQL database.

PostgreSQL tests use the server at DONJON_TEST_POSTGRES_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres): each test run creates
uniquely named databases and drops them afterwards. Without a server they skip
with the reason, unless DONJON_TEST_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from donjon.core.config import load_settings, merge, parse
from donjon.core.settings import Settings

ADMIN_DSN = os.environ.get(
    "DONJON_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("DONJON_TEST_REQUIRE_POSTGRES") == "1"
# CI sets this too: a real client a test needs (node, Chromium) must be there.
REQUIRE_TOOLS = os.environ.get("DONJON_TEST_REQUIRE_TOOLS") == "1"


def require_tool(problem: str | None) -> None:
    """Skip (locally) or fail (CI) when a client the test drives is missing."""
    if problem:
        if REQUIRE_TOOLS:
            pytest.fail(f"{problem}, and DONJON_TEST_REQUIRE_TOOLS=1")
        pytest.skip(problem)


MASTERKEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _admin_connect_kwargs() -> dict[str, Any]:
    url = make_url(ADMIN_DSN)
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(**_admin_connect_kwargs(), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_postgres_error: str | None = None


def postgres_available() -> str | None:
    """None when the server answers, else why not (checked once per run)."""
    global _postgres_error
    if _postgres_error is None:
        try:
            asyncio.run(_admin("SELECT 1"))
            _postgres_error = ""
        except Exception as exc:  # noqa: BLE001 - any failure means "no server"
            _postgres_error = f"{type(exc).__name__}: {exc}"
    return _postgres_error or None


def require_postgres() -> None:
    problem = postgres_available()
    if problem:
        message = f"PostgreSQL not reachable at {ADMIN_DSN} ({problem})"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " and DONJON_TEST_REQUIRE_POSTGRES=1")
        pytest.skip(message)


def create_pg_database(template: str | None = None) -> str:
    """Create an empty database (or a copy of `template`) and return its DSN (asyncpg URL form)."""
    require_postgres()
    name = f"donjon_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{copy}'))
    url = make_url(ADMIN_DSN).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(dsn: str) -> None:
    name = make_url(dsn).database
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    dsn = create_pg_database()
    try:
        yield dsn
    finally:
        drop_pg_database(dsn)


def make_settings(database: dict[str, Any], **overrides: Any) -> Settings:
    """Settings from defaults.yaml with `database` as the Database section and overrides merged."""
    from donjon.core.config import default_tree

    tree = default_tree()
    merge(tree, {"Database": database})
    merge(tree, overrides)
    return parse(Settings, tree)


def sqlite_database(path: Path) -> dict[str, Any]:
    return {"sqlite": {"Path": str(path)}, "postgres": {"DSN": ""}}


def postgres_database(dsn: str) -> dict[str, Any]:
    return {"postgres": {"DSN": dsn}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The Database section of a fresh, empty store: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_database(tmp_path / "donjon.db")
        return
    dsn = create_pg_database()
    try:
        yield postgres_database(dsn)
    finally:
        drop_pg_database(dsn)


@pytest.fixture
def settings(database: dict[str, Any]) -> Settings:
    return make_settings(database)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Any]:
    """A runtime on a fresh store with the core tables created and setup run."""
    from donjon.core.runtime import build_runtime
    from donjon.core.setup.init import create_tables
    from donjon.core.setup.runner import SetupRunner

    rt = build_runtime(settings, masterkey=MASTERKEY)
    await create_tables(rt.db)
    await SetupRunner(rt).run()
    try:
        yield rt
    finally:
        await rt.close()


__all__ = ["load_settings", "make_settings", "sqlite_database", "postgres_database", "MASTERKEY"]
