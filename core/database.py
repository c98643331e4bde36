"""The SQL connection: one async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

`Database.write()` opens the transaction a push or a projection batch runs in;
`Database.read()` one for queries. On SQLite a write transaction starts with
BEGIN IMMEDIATE (the database-wide write lock, taken up front so two writers
never deadlock upgrading a read lock) and writers of one process queue on an
asyncio lock instead of spinning in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import msgspec
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from donjon.core.errors import ConfigError
from donjon.core.settings import DatabaseSettings

_json_encoder = msgspec.json.Encoder()


def json_dumps(value: object) -> str:
    return _json_encoder.encode(value).decode()


json_loads = msgspec.json.decode


def async_url(dsn: str) -> str:
    """Turn a libpq-style postgresql:// URL into SQLAlchemy's asyncpg URL."""
    url = make_url(dsn)
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


class Database:
    """An async engine plus the transaction helpers every store uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: Literal["sqlite", "postgresql"] = engine.dialect.name  # type: ignore[assignment]
        # SQLite only; one per event loop (setup and the server may run in
        # different loops of one process, and a lock belongs to its loop).
        self._write_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] | None = (
            {} if self.dialect == "sqlite" else None
        )

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        if settings.kind == "postgres":
            pg = settings.postgres
            engine = create_async_engine(
                async_url(pg.DSN),
                pool_size=pg.MaxOpenConns,
                max_overflow=pg.MaxOverflowConns,
                pool_recycle=int(pg.MaxConnLifetime.total_seconds()),
                pool_pre_ping=False,
                json_serializer=json_dumps,
                json_deserializer=json_loads,
            )
            return cls(engine)
        return cls.sqlite(settings.sqlite.Path)

    @classmethod
    def sqlite(cls, path: str | Path) -> Database:
        """A database in the SQLite file at `path` (created with its directory if missing)."""
        if str(path) in ("", ":memory:"):
            # Every pooled connection would open its own, empty database.
            raise ConfigError(
                f"Database.sqlite.Path: expected a file path, not {str(path)!r}"
                " (in-memory SQLite cannot be shared by the store's connections)"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            json_serializer=json_dumps,
            json_deserializer=json_loads,
            connect_args={"timeout": 60},
        )
        _configure_sqlite(engine)
        return cls(engine)

    @classmethod
    def postgres(cls, dsn: str, **pool: int) -> Database:
        engine = create_async_engine(
            async_url(dsn), json_serializer=json_dumps, json_deserializer=json_loads, **pool
        )
        return cls(engine)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        if self._write_locks is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            for stale in [other for other in self._write_locks if other.is_closed()]:
                del self._write_locks[stale]
            lock = self._write_locks[loop] = asyncio.Lock()
        async with lock, _in_flight(self):
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(donjon_begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (one snapshot on SQLite; statement snapshots on PostgreSQL)."""
        async with _in_flight(self), self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    async def analyze(self) -> None:
        """Refresh the query planner's statistics (SQLite; PostgreSQL's autovacuum does it).

        Without them SQLite cannot tell a selective index from the one that
        gives the sort order for free, and scans a whole table to find one
        row. `analysis_limit` samples each index, so this takes milliseconds
        at any size.
        """
        if self.is_postgres:
            return
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


# aiosqlite runs each connection on a thread; cancelling a task in the middle
# of one of its calls leaves that connection unusable and the next write
# waiting on its lock (seen as a hung `donjon setup` after SIGTERM). So a
# signal does not cancel SQLite work mid-call: when a SQLite transaction is
# open, `cancel_at_next_transaction()` makes the next transaction to start
# raise CancelledError instead (see donjon.core.cli.run).
_sqlite_in_flight = 0
_cancel_requested = False


@asynccontextmanager
async def _in_flight(db: Database) -> AsyncIterator[None]:
    global _sqlite_in_flight, _cancel_requested
    if db.dialect != "sqlite":
        yield
        return
    if _cancel_requested:
        _cancel_requested = False
        raise asyncio.CancelledError("cancelled at a transaction boundary")
    _sqlite_in_flight += 1
    try:
        yield
    finally:
        _sqlite_in_flight -= 1


def sqlite_busy() -> bool:
    """Whether a SQLite transaction of this process is open."""
    return _sqlite_in_flight > 0


def cancel_pending() -> bool:
    """Whether `cancel_at_next_transaction` waits for its transaction still."""
    return _cancel_requested


def cancel_at_next_transaction() -> None:
    """Make the next SQLite transaction of this process raise CancelledError
    before it touches the database (once)."""
    global _cancel_requested
    _cancel_requested = True


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(conn.get_execution_options().get("donjon_begin", "BEGIN"))
