"""Bulk reads of events and bulk writes of read-model rows, for rebuilds.

A rebuild moves every event of the store and every row of a read model. Per
row, SQLAlchemy's statement and result machinery costs more than the
database does, so these helpers run plain SQL on the driver connection
(asyncpg or aiosqlite) under the caller's AsyncConnection, inside its
transaction:

- events are read by position window (keyset on `position`), only the
  columns a StoredEvent holds, and turned into StoredEvents exactly as
  `EventStore.query` would;
- read-model rows are written with values converted as their columns'
  SQLAlchemy types convert them, so they land as `apply_statements` would
  write them. On PostgreSQL the rows of one kind of change go to a temporary
  table by binary COPY, then one statement applies them all (`INSERT …
  SELECT … ON CONFLICT`, `UPDATE … FROM`, `DELETE … USING`); on SQLite one
  prepared statement runs with executemany (sqlite3 loops in C).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from donjon.core.database import json_loads
from donjon.core.events import StoredEvent
from donjon.core.eventstore.schema import UTCDateTime, events

# The events table's columns in StoredEvent's field order (`type` is `event_type`).
EVENT_COLUMNS = tuple(
    "event_type" if f.name == "type" else f.name for f in dataclasses.fields(StoredEvent)
)
# Rows are unpacked and events built positionally (see _NewStoredEvent).
assert EVENT_COLUMNS == (
    "position",
    "instance_id",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "revision",
    "payload",
    "creator",
    "owner",
    "created_at",
), "StoredEvent changed: update the bulk event reads"
assert set(EVENT_COLUMNS) == {c.name for c in events.columns}, "StoredEvent and events differ"


async def driver_connection(conn: AsyncConnection) -> Any:
    """The driver's connection under `conn`, inside `conn`'s transaction."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if conn.dialect.name == "postgresql" and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN with its first statement;
        # without one, the driver's statements would each commit on their own.
        await conn.execute(text("SELECT 1"))
    return driver


# -- reading events ---------------------------------------------------------------------


async def read_events(
    conn: AsyncConnection, event_types: Sequence[str], after: int, head: int, limit: int
) -> tuple[list[StoredEvent], int]:
    """Events of `event_types` after position `after`, at most `limit` of them and
    none past `head`, in position order; and the position read up to.

    Reads position windows so that every query is bounded whatever share of
    the store these types are: `(after, after + limit]`, then the next
    window sized by what is still missing, until `limit` events or `head`.
    The position returned is the end of the last window: every event of
    these types up to it is in the list.
    """
    driver = await driver_connection(conn)
    postgres = conn.dialect.name == "postgresql"
    sql = _PG_READ if postgres else _sqlite_read(len(event_types))
    found: list[StoredEvent] = []
    reached = after
    while reached < head and len(found) < limit:
        upto = min(reached + (limit - len(found)), head)
        if postgres:
            found += _from_asyncpg(await driver.fetch(sql, reached, upto, list(event_types)))
        else:
            rows = await driver.execute_fetchall(sql, (reached, upto, *event_types))
            found += _from_sqlite(rows)
        reached = upto
    return found, reached


_WINDOW = "position > {} AND position <= {}"
# Payloads come as JSON text and are decoded in one call per query.
_PG_READ = (
    "SELECT "
    + ", ".join("payload::text" if c == "payload" else c for c in EVENT_COLUMNS)
    + " FROM events WHERE "
    + _WINDOW.format("$1", "$2")
    + " AND event_type = ANY($3::text[]) ORDER BY position"
)


def _sqlite_read(types: int) -> str:
    marks = ", ".join("?" * types)
    return (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE {_WINDOW.format('?', '?')}"
        f" AND event_type IN ({marks}) ORDER BY position"
    )


def _payloads(rows: list[Any]) -> list[Any]:
    return json_loads("[" + ",".join([row[7] for row in rows]) + "]")  # type: ignore[no-any-return]


def _from_asyncpg(rows: list[Any]) -> list[StoredEvent]:
    # asyncpg returns timestamptz aware, which UTCDateTime leaves as it is.
    event = _NewStoredEvent
    return [
        event(p, i, at, ai, s, t, r, payload, c, o, ca)
        for (p, i, at, ai, s, t, r, _, c, o, ca), payload in zip(rows, _payloads(rows), strict=True)
    ]


def _from_sqlite(rows: list[Any]) -> list[StoredEvent]:
    # UTCDateTime stores UTC naive as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    parse, event = datetime.fromisoformat, _NewStoredEvent
    return [
        event(p, i, at, ai, s, t, r, payload, c, o, parse(ca + "+00:00"))
        for (p, i, at, ai, s, t, r, _, c, o, ca), payload in zip(rows, _payloads(rows), strict=True)
    ]


class _NewStoredEvent:
    """Builds a StoredEvent three times faster than its own constructor.

    The frozen dataclass's __init__ sets each field through
    object.__setattr__, which costs more than the rest of reading an event.
    This class has the same slots, so plain attribute stores fill them, and
    then it makes the object what it is: a StoredEvent, frozen, equal to one
    built the usual way (assigning __class__ between classes of the same
    layout is plain Python).
    """

    __slots__ = StoredEvent.__slots__

    def __init__(
        self,
        position: int,
        instance_id: str,
        aggregate_type: str,
        aggregate_id: str,
        sequence: int,
        type: str,  # noqa: A002 - StoredEvent's field
        revision: int,
        payload: dict[str, Any],
        creator: str,
        owner: str,
        created_at: datetime,
    ) -> None:
        self.position = position
        self.instance_id = instance_id
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.sequence = sequence
        self.type = type
        self.revision = revision
        self.payload = payload
        self.creator = creator
        self.owner = owner
        self.created_at = created_at
        self.__class__ = StoredEvent  # type: ignore[assignment]


# -- writing rows -----------------------------------------------------------------------

# Temporary tables of one transaction are named apart by this counter.
_temporary_names = (f"donjon_bulk_{n}" for n in itertools.count(1))


class TableWriter:
    """Writes many rows of one table with one statement per kind of change."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.postgres = dialect.name == "postgresql"
        self.columns = tuple(c.name for c in table.columns)
        self.key = tuple(c.name for c in table.primary_key.columns)
        if not self.key:
            raise ValueError(f"{table.name}: a projection table needs a primary key")
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for column in table.columns:
            processor = bind_processor(column.type, dialect)
            if processor is not None:
                self._processors[column.name] = processor
        prep = dialect.identifier_preparer
        self._name = prep.format_table(table)
        self._q = {name: prep.quote(name) for name in self.columns}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._put_row = _tuple_getter(self.columns)

    async def remove(self, driver: Any, keys: list[tuple[Any, ...]]) -> None:
        """Delete the rows with these primary keys."""
        if keys:
            await self._write(driver, "remove", self.key, keys)

    async def put(self, driver: Any, rows: list[dict[str, Any]]) -> None:
        """Insert these whole rows, replacing those whose key exists."""
        if rows:
            await self._write(driver, "put", self.columns, list(map(self._put_row, rows)))

    async def patch(
        self,
        driver: Any,
        names: tuple[str, ...],
        keys: list[tuple[Any, ...]],
        values: list[dict[str, Any]],
    ) -> None:
        """Set the columns `names` (no key column) of the rows with these keys."""
        if keys:
            get = _tuple_getter(names)
            rows = [key + get(row) for key, row in zip(keys, values, strict=True)]
            await self._write(driver, "patch", (*self.key, *names), rows)

    async def _write(
        self, driver: Any, kind: str, names: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        converted = [(i, self._processors[n]) for i, n in enumerate(names) if n in self._processors]
        if converted:
            columns: list[Any] = list(zip(*rows, strict=True))
            for i, processor in converted:
                columns[i] = map(processor, columns[i])
            rows = list(zip(*columns, strict=True))
        if not self.postgres:
            await driver.executemany(self._statement(kind, names, ""), rows)
            return
        temporary = next(_temporary_names)
        listed = ", ".join(self._q[n] for n in names)
        await driver.execute(
            f"CREATE TEMPORARY TABLE {temporary} ON COMMIT DROP AS"
            f" SELECT {listed} FROM {self._name} WITH NO DATA"
        )
        await driver.copy_records_to_table(temporary, records=rows, columns=names)
        await driver.execute(self._statement(kind, names, temporary))
        await driver.execute(f"DROP TABLE {temporary}")

    def _statement(self, kind: str, names: tuple[str, ...], source: str) -> str:
        sql = self._sql.get((kind, names))
        if sql is None:
            sql = self._sql[(kind, names)] = self._build(kind, names)
        return sql.replace("{source}", source) if source else sql

    def _build(self, kind: str, names: tuple[str, ...]) -> str:
        q, table = self._q, self._name
        keys = [q[k] for k in self.key]
        listed = ", ".join(q[n] for n in names)
        sets = [q[n] for n in names if n not in self.key]
        on_conflict = f"ON CONFLICT ({', '.join(keys)}) " + (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in sets)
            if sets
            else "DO NOTHING"
        )
        if self.postgres:
            # `{source}`: the temporary table holding the rows (unique keys).
            match = " AND ".join(f"t.{k} = v.{k}" for k in keys)
            if kind == "remove":
                return f"DELETE FROM {table} AS t USING {{source}} AS v WHERE {match}"
            if kind == "put":
                rows = f"SELECT {listed} FROM {{source}}"
                return f"INSERT INTO {table} ({listed}) {rows} {on_conflict}"
            assignments = ", ".join(f"{c} = v.{c}" for c in sets)
            return f"UPDATE {table} AS t SET {assignments} FROM {{source}} AS v WHERE {match}"
        # One row of parameters per execution; ?N is the Nth of `names`.
        marks = {n: f"?{i}" for i, n in enumerate(names, 1)}
        where = " AND ".join(f"{q[k]} = {marks[k]}" for k in self.key)
        if kind == "remove":
            return f"DELETE FROM {table} WHERE {where}"
        if kind == "put":
            values = ", ".join(marks[n] for n in names)
            return f"INSERT INTO {table} ({listed}) VALUES ({values}) {on_conflict}"
        assignments = ", ".join(f"{q[n]} = {marks[n]}" for n in names if n not in self.key)
        return f"UPDATE {table} SET {assignments} WHERE {where}"


def _tuple_getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """row -> the values of `names`, always as a tuple."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy does to a value of this type before the driver gets it.

    UTCDateTime, in every projection, gets a faster equal: on PostgreSQL it
    passes values through; on SQLite it stores UTC as naive ISO text with
    microseconds, as SQLAlchemy's DateTime does.
    """
    if type(type_) is UTCDateTime:
        return _utc_text if dialect.name == "sqlite" else None
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    # isoformat of a UTC datetime ends with "+00:00".
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]
