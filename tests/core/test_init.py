"""`donjon init`: with admin credentials it creates donjon's PostgreSQL role and
database, then the tables as that role; it is idempotent."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from donjon.core.errors import SetupError
from donjon.core.setup.init import initialise, is_initialised
from tests.conftest import ADMIN_DSN, MASTERKEY, make_settings, require_postgres
from tests.core.test_setup_support import donjon, pg_execute, query, write_config

pytestmark = pytest.mark.postgres


def _url(user: str, password: str | None, database: str) -> str:
    admin = make_url(ADMIN_DSN)
    url = admin.set(username=user, password=password, database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A unique role and database name; both are dropped afterwards."""
    require_postgres()
    suffix = secrets.token_hex(4)
    role, database = f"donjon_role_{suffix}", f"donjon_db_{suffix}"
    yield role, database
    asyncio.run(pg_execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(pg_execute(ADMIN_DSN, f'DROP ROLE IF EXISTS "{role}"'))


async def _fetch(sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.mark.slow
def test_init_creates_the_role_and_its_database_then_setup_runs_as_that_role(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    role, database_name = names
    dsn = _url(role, "s3cret'pw", database_name)
    database = {"postgres": {"DSN": dsn, "Admin": {"DSN": ADMIN_DSN}}}
    config = str(write_config(tmp_path / "donjon.yaml", database))
    key = tmp_path / "masterkey"
    key.write_bytes(MASTERKEY)

    status, output = donjon(tmp_path, "init", "--config", config)
    assert status == 0, output
    assert (
        f"created role {role}" in output
        and f"created database {database_name} owned by {role}" in output
    )

    [row] = asyncio.run(
        _fetch("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1", role)
    )
    assert row["rolcanlogin"] and row["rolpassword"].startswith("SCRAM-SHA-256$")
    owner = asyncio.run(
        _fetch(
            "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1",
            database_name,
        )
    )
    assert owner[0]["owner"] == role
    target = {"postgres": {"DSN": dsn}}
    tables = dict(
        query(target, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
    )
    assert tables["events"] == role and tables["setup_leases"] == role

    status, output = donjon(tmp_path, "setup", "--config", config, "--masterkeyFile", str(key))
    assert status == 0, output
    assert "setup completed" in output
    assert query(target, "SELECT name FROM instances") == [("donjon",)]
    assert dict(
        query(target, "SELECT tablename, tableowner FROM pg_tables WHERE tablename = 'instances'")
    ) == {"instances": role}

    # Running init again changes nothing and fails on nothing.
    asyncio.run(initialise(make_settings(database).Database))
    assert query(target, "SELECT name FROM instances") == [("donjon",)]


@pytest.mark.anyio
async def test_init_grants_a_database_that_exists_already_to_the_role(
    names: tuple[str, str],
) -> None:
    role, database_name = names
    # The database exists, owned by the admin: on PostgreSQL 15 a new role may
    # not create tables in its public schema without a grant.
    await pg_execute(ADMIN_DSN, f'CREATE DATABASE "{database_name}"')
    database = {"postgres": {"DSN": _url(role, "pw", database_name), "Admin": {"DSN": ADMIN_DSN}}}
    settings = make_settings(database)

    await initialise(settings.Database)
    await initialise(settings.Database)

    from donjon.core.database import Database

    db = Database.from_settings(settings.Database)
    try:
        assert await is_initialised(db)
    finally:
        await db.dispose()


@pytest.mark.anyio
async def test_init_names_the_admin_dsn_when_the_admin_cannot_connect(
    names: tuple[str, str],
) -> None:
    role, database_name = names
    admin = make_url(ADMIN_DSN).set(port=1).render_as_string(hide_password=False)
    database = {"postgres": {"DSN": _url(role, "pw", database_name), "Admin": {"DSN": admin}}}

    with pytest.raises(
        SetupError, match=r"Database.postgres.Admin.DSN: cannot connect to 127.0.0.1:1/"
    ):
        await initialise(make_settings(database).Database)
