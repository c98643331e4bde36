"""`donjon init`: the database, its user and the core tables.

With `Database.postgres.Admin.DSN`, the database and role named in
`Database.postgres.DSN` are created when missing (like `zitadel init`).
Everything here is idempotent.
"""

from __future__ import annotations

import logging

import asyncpg
from sqlalchemy.engine import make_url

from donjon.core.database import Database
from donjon.core.eventstore.schema import metadata
from donjon.core.settings import DatabaseSettings

log = logging.getLogger(__name__)


async def create_database_and_user(settings: DatabaseSettings) -> None:
    """Create the PostgreSQL role and database of Database.postgres.DSN as the admin."""
    target = make_url(settings.postgres.DSN)
    admin = make_url(settings.postgres.Admin.DSN)
    conn = await asyncpg.connect(
        host=admin.host or "127.0.0.1",
        port=admin.port or 5432,
        user=admin.username,
        password=admin.password,
        database=admin.database or "postgres",
    )
    try:
        user, database = target.username, target.database
        if user and not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user):
            password = target.password
            if password:
                # Identifiers and literals cannot be bound parameters in DDL.
                await conn.execute(f"CREATE ROLE {_ident(user)} LOGIN PASSWORD {_literal(password)}")
            else:
                await conn.execute(f"CREATE ROLE {_ident(user)} LOGIN")
            log.info("created role %s", user)
        if database and not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            owner = f" OWNER {_ident(user)}" if user else ""
            await conn.execute(f"CREATE DATABASE {_ident(database)}{owner}")
            log.info("created database %s", database)
    finally:
        await conn.close()


async def create_tables(db: Database) -> None:
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)


async def initialise(settings: DatabaseSettings) -> None:
    if settings.kind == "postgres" and settings.postgres.Admin.DSN:
        await create_database_and_user(settings)
    db = Database.from_settings(settings)
    try:
        await create_tables(db)
    finally:
        await db.dispose()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
