"""`donjon init`: the database, its user and the core tables.

With `Database.postgres.Admin.DSN` (a superuser, or a role with CREATEROLE
and CREATEDB), the role and the database named in `Database.postgres.DSN` are
created when missing, like `zitadel init`: the role with the DSN's password,
the database owned by it. The tables are then created as the DSN's user, so
donjon owns what it uses. Everything here is idempotent and safe to run from
several processes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import asyncpg
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from donjon.core.database import Database
from donjon.core.errors import SetupError
from donjon.core.eventstore.schema import metadata
from donjon.core.settings import DatabaseSettings

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising concurrent `donjon init`s ("init").
INIT_LOCK_KEY = 0x696E6974


async def create_database_and_user(settings: DatabaseSettings) -> None:
    """Create the role and the database of Database.postgres.DSN as the admin.

    An existing role keeps its password; an existing database owned by another
    role gets `GRANT ALL` on it and on its `public` schema for the DSN's user.
    Raises SetupError naming Database.postgres.Admin.DSN when the admin cannot
    connect or lacks the rights.
    """
    target = make_url(settings.postgres.DSN)
    admin = make_url(settings.postgres.Admin.DSN)
    user, database = target.username, target.database
    conn = await _connect(admin, admin.database or "postgres")
    created_database = False
    try:
        if user and not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user):
            # Identifiers and literals cannot be bound parameters in DDL.
            password = f" PASSWORD {_literal(target.password)}" if target.password else ""
            await _ignore_duplicate(conn.execute(f"CREATE ROLE {_ident(user)} LOGIN{password}"))
            log.info("created role %s", user)
        exists = "SELECT 1 FROM pg_database WHERE datname = $1"
        if database and not await conn.fetchval(exists, database):
            owner = f" OWNER {_ident(user)}" if user else ""
            created_database = await _ignore_duplicate(
                conn.execute(f"CREATE DATABASE {_ident(database)}{owner}")
            )
            if created_database:
                log.info("created database %s owned by %s", database, user or admin.username)
        if user and database and not created_database:
            await conn.execute(f"GRANT ALL ON DATABASE {_ident(database)} TO {_ident(user)}")
    except asyncpg.PostgresError as exc:
        raise SetupError(f"Database.postgres.Admin.DSN: {_admin_hint(exc)}") from exc
    finally:
        await conn.close()
    if user and database and not created_database:
        # PostgreSQL 15 no longer lets every role create tables in `public`.
        conn = await _connect(admin, database)
        try:
            await conn.execute(f"GRANT ALL ON SCHEMA public TO {_ident(user)}")
        except asyncpg.PostgresError as exc:
            raise SetupError(f"Database.postgres.Admin.DSN: {_admin_hint(exc)}") from exc
        finally:
            await conn.close()


async def create_tables(db: Database) -> None:
    """Create the core tables that are missing (the event store, leases, keys, …)."""
    async with db.write() as conn:
        if db.is_postgres:
            # Two processes creating the same table at once: one would fail.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INIT_LOCK_KEY})
        await conn.run_sync(metadata.create_all)


async def is_initialised(db: Database) -> bool:
    """True when `donjon init` has run on this store (the event table exists).

    Core tables added by a later donjon version are created by `donjon setup`
    (`create_tables` is idempotent), so an upgrade needs no new init.
    """
    async with db.read() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).has_table("events"))


async def require_initialised(db: Database) -> None:
    """Raise SetupError telling the operator to run `donjon init` when tables are missing."""
    if not await is_initialised(db):
        raise SetupError(
            "the database has no donjon tables: run `donjon init` first"
            " (or `donjon start-from-init`, which runs init, setup and start)"
        )


async def initialise(settings: DatabaseSettings) -> None:
    """What `donjon init` does: database and role (with admin credentials), then tables."""
    if settings.kind == "postgres" and settings.postgres.Admin.DSN:
        await create_database_and_user(settings)
    db = Database.from_settings(settings)
    try:
        await create_tables(db)
    finally:
        await db.dispose()


async def _connect(url: URL, database: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=database,
            timeout=10,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = f"{url.host or '127.0.0.1'}:{url.port or 5432}/{database}"
        raise SetupError(f"Database.postgres.Admin.DSN: cannot connect to {where}: {exc}") from exc


async def _ignore_duplicate(statement: Awaitable[object]) -> bool:
    """Run a CREATE; False when another process created the object first."""
    try:
        await statement
    except (asyncpg.DuplicateObjectError, asyncpg.DuplicateDatabaseError):
        return False
    except asyncpg.UniqueViolationError:  # concurrent CREATE ROLE/DATABASE on the catalogs
        return False
    return True


def _admin_hint(exc: asyncpg.PostgresError) -> str:
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"{exc} (the admin needs CREATEROLE and CREATEDB, or to be a superuser)"
    return str(exc)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
