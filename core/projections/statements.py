"""What a projection handler returns: row changes, executed now or folded in bulk.

A handler never talks to the database; it returns statements. The live path
(`apply_statements`) executes them one by one. A rebuild feeds thousands of
events' statements to a `BatchWriter`, which keeps only each row's net change
(a put then two patches become one put) and writes them with one bulk
statement per table and kind of change (see `bulk`).

Keyed statements name one row by its primary key; `*Where` statements touch any
number of rows and make the batch writer flush what it holds first, so order
is kept. A Patch value may be a SQL expression of the row's own columns
(`counter.c.count + 1`); such a patch cannot be folded, so it is executed
like a `*Where` statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ClauseElement, Table, and_, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.projections.bulk import TableWriter, driver_connection


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


def _where(table: Table, values: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    return and_(*(table.c[name] == value for name, value in values.items()))


_upserts: WeakKeyDictionary[Table, dict[str, Any]] = WeakKeyDictionary()


def _upsert(dialect: str, table: Table):  # type: ignore[no-untyped-def]
    """The table's INSERT … ON CONFLICT, built once per table and dialect: building it
    (the `excluded` alias makes a proxy of every column) cost more than running it."""
    by_dialect = _upserts.setdefault(table, {})
    statement = by_dialect.get(dialect)
    if statement is None:
        statement = by_dialect[dialect] = _build_upsert(dialect, table)
    return statement


def _build_upsert(dialect: str, table: Table):  # type: ignore[no-untyped-def]
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    keys = {c.name for c in table.primary_key.columns}
    others = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys}
    index = [table.c[k] for k in keys]
    if not others:
        return ins.on_conflict_do_nothing(index_elements=index)
    return ins.on_conflict_do_update(index_elements=index, set_=others)


def _full_row(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    return {c.name: values.get(c.name) for c in table.columns}


async def apply_statements(conn: AsyncConnection, statements: Iterable[Statement]) -> None:
    """Execute statements in order, one by one (the live path)."""
    dialect = conn.dialect.name
    for st in statements:
        if isinstance(st, Put):
            await conn.execute(_upsert(dialect, st.table), [_full_row(st.table, st.values)])
        elif isinstance(st, Patch):
            where = _where(st.table, st.key)
            await conn.execute(update(st.table).where(where).values(dict(st.values)))
        elif isinstance(st, Remove):
            await conn.execute(delete(st.table).where(_where(st.table, st.key)))
        elif isinstance(st, PatchWhere):
            where = _where(st.table, st.where)
            await conn.execute(update(st.table).where(where).values(dict(st.values)))
        elif isinstance(st, RemoveWhere):
            await conn.execute(delete(st.table).where(_where(st.table, st.where)))
        else:
            raise TypeError(f"not a projection statement: {st!r}")


class BatchWriter:
    """Folds keyed statements per row and writes the net result in bulk.

    Each row (table and primary key) holds one pending change: a put (the
    whole row, with later patches merged in), a patch (the columns set so
    far) or a removal. `flush` writes them with one bulk statement per table
    and kind (see `bulk.TableWriter`): removals, then puts, then patches.

    A statement that cannot be folded runs in order instead, after a flush:
    a `*Where` statement; a Put, Patch or Remove that does not name exactly
    its row's primary key; and a Patch that sets nothing, changes a key
    column, names a column the table lacks, or sets a SQL expression.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._rows: dict[Table, _PendingRows] = {}

    async def add(self, statements: Iterable[Statement]) -> None:
        for st in statements:
            if not self.fold(st):
                await self.run_in_order(st)

    def fold(self, st: Statement) -> bool:
        """Fold a keyed statement into the pending rows; False when it must
        go through `run_in_order` instead."""
        # The rebuild's inner loop: once per statement of every event.
        if isinstance(st, Patch):
            return (self._rows.get(st.table) or self._table(st.table)).patch(st.key, st.values)
        if isinstance(st, Put):
            return (self._rows.get(st.table) or self._table(st.table)).put(st.values)
        if isinstance(st, Remove):
            return (self._rows.get(st.table) or self._table(st.table)).remove(st.key)
        return False

    async def run_in_order(self, st: Statement) -> None:
        """Write what is pending, then execute `st` on its own."""
        await self.flush()
        await apply_statements(self.conn, [st])

    async def flush(self) -> None:
        batches = [rows for rows in self._rows.values() if rows.changes]
        if not batches:
            return
        driver = await driver_connection(self.conn)
        plans = [rows.take() for rows in batches]
        for rows, (removes, _, _) in zip(batches, plans, strict=True):
            await rows.writer.remove(driver, removes)
        for rows, (_, puts, _) in zip(batches, plans, strict=True):
            await rows.writer.put(driver, puts)
        for rows, (_, _, patches) in zip(batches, plans, strict=True):
            for columns, (keys, values) in patches.items():
                await rows.writer.patch(driver, columns, keys, values)

    def _table(self, table: Table) -> _PendingRows:
        rows = self._rows[table] = _PendingRows(_table_writer(table, self.conn.dialect))
        return rows


_PUT, _PATCH, _REMOVE = "put", "patch", "remove"


class _PendingRows:
    """One table's pending changes by primary key.

    Keys are what `itemgetter` returns for the key columns: the value itself
    for a one-column key, a tuple otherwise (tuples again in `take`).
    """

    def __init__(self, writer: TableWriter) -> None:
        self.writer = writer
        self._columns = writer.columns
        self._key_names = frozenset(writer.key)
        self._patchable = frozenset(writer.columns) - self._key_names
        self._key_of = itemgetter(*writer.key)
        self.changes: dict[Any, tuple[str, dict[str, Any] | None]] = {}

    def put(self, values: Mapping[str, Any]) -> bool:
        if not self._key_names <= values.keys():
            return False
        row = dict.fromkeys(self._columns)
        row.update(values)
        self.changes[self._key_of(row)] = (_PUT, row)
        return True

    def patch(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
        if not values or key.keys() != self._key_names or not values.keys() <= self._patchable:
            return False
        for value in values.values():
            if isinstance(value, ClauseElement):
                return False
        row_key = self._key_of(key)
        held = self.changes.get(row_key)
        if held is None:
            self.changes[row_key] = (_PATCH, dict(values))
        elif held[0] is not _REMOVE:
            held[1].update(values)  # type: ignore[union-attr]
        # a patch of a removed row stays a removal
        return True

    def remove(self, key: Mapping[str, Any]) -> bool:
        if key.keys() != self._key_names:
            return False
        self.changes[self._key_of(key)] = (_REMOVE, None)
        return True

    def take(
        self,
    ) -> tuple[
        list[tuple[Any, ...]],
        list[dict[str, Any]],
        dict[tuple[str, ...], tuple[list[tuple[Any, ...]], list[dict[str, Any]]]],
    ]:
        """Empty the pending changes into (removed keys, put rows, patches by columns set)."""
        changes, self.changes = self.changes, {}
        removes: list[Any] = []
        puts: list[dict[str, Any]] = []
        patches: dict[frozenset[str], tuple[list[Any], list[dict[str, Any]]]] = {}
        for key, (kind, values) in changes.items():
            if kind is _PUT:
                puts.append(values)  # type: ignore[arg-type]
            elif kind is _REMOVE:
                removes.append(key)
            else:
                names = frozenset(values)  # type: ignore[arg-type]
                group = patches.get(names)
                if group is None:
                    group = patches[names] = ([], [])
                group[0].append(key)
                group[1].append(values)  # type: ignore[arg-type]
        if len(self._key_names) == 1:
            removes = [(key,) for key in removes]
            for group in patches.values():
                group[0][:] = [(key,) for key in group[0]]
        return removes, puts, {tuple(sorted(names)): group for names, group in patches.items()}


_writers: WeakKeyDictionary[Table, dict[str, TableWriter]] = WeakKeyDictionary()


def _table_writer(table: Table, dialect: Dialect) -> TableWriter:
    """The table's bulk writer for this dialect, built once."""
    by_dialect = _writers.setdefault(table, {})
    writer = by_dialect.get(dialect.name)
    if writer is None:
        writer = by_dialect[dialect.name] = TableWriter(table, dialect)
    return writer
