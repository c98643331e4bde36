"""What a projection handler returns: row changes, executed now or folded in bulk.

A handler never talks to the database; it returns statements. The live path
(`apply_statements`) executes them one by one. A rebuild feeds thousands of
events' statements to a `BatchWriter`, which keeps only each row's net change
(a put then two patches become one put) and writes them with a few
multi-row statements: this is what lets a rebuild run near the database's
copy speed.

Keyed statements name one row by its primary key; `*Where` statements touch any
number of rows and make the batch writer flush what it holds first, so order
is kept. A Patch value may be a SQL expression of the row's own columns
(`counter.c.count + 1`); such a patch cannot be folded, so it is executed
like a `*Where` statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ClauseElement, Table, and_, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Put:
    """Insert the row, or replace it whole when its primary key exists."""

    table: Table
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Patch:
    """Set some columns of the row with this primary key (no-op when absent)."""

    table: Table
    key: Mapping[str, Any]
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete the row with this primary key."""

    table: Table
    key: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PatchWhere:
    """Set columns on every row whose columns equal `where`."""

    table: Table
    where: Mapping[str, Any]
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RemoveWhere:
    """Delete every row whose columns equal `where`."""

    table: Table
    where: Mapping[str, Any]


Statement = Put | Patch | Remove | PatchWhere | RemoveWhere


def primary_key(table: Table, values: Mapping[str, Any]) -> tuple[Any, ...]:
    try:
        return tuple(values[c.name] for c in table.primary_key.columns)
    except KeyError as exc:
        raise ValueError(f"{table.name}: the statement lacks primary key column {exc}") from None


def _where(table: Table, values: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    return and_(*(table.c[name] == value for name, value in values.items()))


def _upsert(dialect: str, table: Table):  # type: ignore[no-untyped-def]
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    keys = {c.name for c in table.primary_key.columns}
    others = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys}
    index = [table.c[k] for k in keys]
    if not others:
        return ins.on_conflict_do_nothing(index_elements=index)
    return ins.on_conflict_do_update(index_elements=index, set_=others)


def _has_expression(values: Mapping[str, Any]) -> bool:
    return any(isinstance(v, ClauseElement) for v in values.values())


def _full_row(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    return {c.name: values.get(c.name) for c in table.columns}


async def apply_statements(conn: AsyncConnection, statements: Iterable[Statement]) -> None:
    """Execute statements in order, one by one (the live path)."""
    dialect = conn.dialect.name
    for st in statements:
        if isinstance(st, Put):
            await conn.execute(_upsert(dialect, st.table), [_full_row(st.table, st.values)])
        elif isinstance(st, Patch):
            await conn.execute(update(st.table).where(_where(st.table, st.key)).values(dict(st.values)))
        elif isinstance(st, Remove):
            await conn.execute(delete(st.table).where(_where(st.table, st.key)))
        elif isinstance(st, PatchWhere):
            await conn.execute(update(st.table).where(_where(st.table, st.where)).values(dict(st.values)))
        elif isinstance(st, RemoveWhere):
            await conn.execute(delete(st.table).where(_where(st.table, st.where)))
        else:
            raise TypeError(f"not a projection statement: {st!r}")


class BatchWriter:
    """Folds keyed statements per row and writes the net result in bulk."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        # (table name, key) -> ("put", row) | ("patch", values) | ("remove", key)
        self._pending: dict[tuple[str, tuple[Any, ...]], tuple[str, Table, dict[str, Any]]] = {}

    async def add(self, statements: Iterable[Statement]) -> None:
        for st in statements:
            if isinstance(st, Put):
                row = _full_row(st.table, st.values)
                self._pending[(st.table.name, primary_key(st.table, row))] = ("put", st.table, row)
            elif isinstance(st, Patch) and not _has_expression(st.values):
                slot = (st.table.name, primary_key(st.table, st.key))
                held = self._pending.get(slot)
                if held is None:
                    self._pending[slot] = ("patch", st.table, {**st.key, **st.values})
                elif held[0] in ("put", "patch"):
                    held[2].update(st.values)
                # a patch of a removed row stays a removal
            elif isinstance(st, Remove):
                slot = (st.table.name, primary_key(st.table, st.key))
                self._pending[slot] = ("remove", st.table, dict(st.key))
            else:
                await self.flush()
                await apply_statements(self.conn, [st])

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        removes: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        puts: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        patches: dict[tuple[str, frozenset[str]], tuple[Table, list[dict[str, Any]]]] = {}
        for (table_name, _key), (kind, table, values) in pending.items():
            if kind == "remove":
                removes.setdefault(table_name, (table, []))[1].append(values)
            elif kind == "put":
                puts.setdefault(table_name, (table, []))[1].append(values)
            else:
                group = (table_name, frozenset(values))
                patches.setdefault(group, (table, []))[1].append(values)
        for table, rows in removes.values():
            await self._remove_many(table, rows)
        for table, rows in puts.values():
            await self.conn.execute(_upsert(self.dialect, table), rows)
        for (_name, columns), (table, rows) in patches.items():
            await self._patch_many(table, columns, rows)

    async def _remove_many(self, table: Table, keys: list[dict[str, Any]]) -> None:
        from sqlalchemy import bindparam

        stmt = delete(table).where(
            and_(*(table.c[c.name] == bindparam(f"k_{c.name}") for c in table.primary_key.columns))
        )
        await self.conn.execute(stmt, [{f"k_{k}": v for k, v in key.items()} for key in keys])

    async def _patch_many(self, table: Table, columns: frozenset[str], rows: list[dict[str, Any]]) -> None:
        from sqlalchemy import bindparam

        keys = [c.name for c in table.primary_key.columns]
        stmt = (
            update(table)
            .where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in keys)))
            .values({c: bindparam(f"v_{c}") for c in columns if c not in keys})
        )
        params = [
            {**{f"k_{k}": row[k] for k in keys}, **{f"v_{c}": row[c] for c in columns if c not in keys}}
            for row in rows
        ]
        await self.conn.execute(stmt, params)
