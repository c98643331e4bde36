"""The rebuild's bulk paths read and write exactly what the SQLAlchemy paths do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, Table, Text, delete
from sqlalchemy.ext.asyncio import create_async_engine

from donjon.core.events import StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.projections.bulk import bind_processor, read_events
from donjon.core.projections.statements import (
    BatchWriter,
    Patch,
    Put,
    Remove,
    Statement,
    apply_statements,
)
from tests.conftest import make_settings
from tests.core.test_projections_support import (
    NoteAdded,
    NoteRenamed,
    NoteTagged,
    bare_store,
    note,
    table_rows,
)

pytestmark = pytest.mark.anyio

metadata = MetaData()


def typed_table(name: str) -> Table:
    # Reserved words as names, and every kind of value a projection stores.
    return Table(
        name,
        metadata,
        Column("order", Text, primary_key=True),
        Column("position", Integer, primary_key=True),
        Column("label", Text, nullable=True),
        Column("enabled", Boolean, nullable=True),
        Column("details", JSON, nullable=True),
        Column("changed_at", UTCDateTime, nullable=True),
    )


live_table = typed_table("bulk_live")
bulk_table = typed_table("bulk_bulk")


def single_key_table(name: str) -> Table:
    return Table(name, metadata, Column("id", Text, primary_key=True), Column("n", Integer))


single_key_live = single_key_table("bulk_single_live")
single_key_bulk = single_key_table("bulk_single_bulk")

MOMENTS = [
    datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
    datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),  # a three-digit year
    datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    None,
]


def random_statements(rng: random.Random, table: Table) -> list[Statement]:
    statements: list[Statement] = []
    for i in range(300):
        key = {"order": rng.choice(["a", "b'; --", "ç"]), "position": rng.randrange(4)}
        values = {
            "label": rng.choice(["x", "it's", "", None]),
            "enabled": rng.choice([True, False, None]),
            "details": rng.choice([{"a": [1, 2, {"b": None}]}, ["x"], "text", 3, None]),
            "changed_at": rng.choice(MOMENTS),
        }
        kind = rng.choice(["put", "put", "patch", "patch", "remove"])
        if kind == "put":
            statements.append(Put(table, {**key, **values}))
        elif kind == "patch":
            chosen = rng.sample(sorted(values), rng.randrange(1, len(values) + 1))
            statements.append(Patch(table, key, {c: values[c] for c in chosen}))
        else:
            statements.append(Remove(table, key))
        if i % 97 == 0:
            statements.append(Put(table, {**key, "label": f"partial {i}"}))  # the rest NULL
        if i % 53 == 0:  # keyed by other columns than the primary key: run in order
            statements.append(Patch(table, {"label": "x"}, {"enabled": True}))
            statements.append(Remove(table, {"label": "it's", "enabled": False}))
    return statements


async def test_bulk_writes_store_every_type_as_statements_one_by_one(
    database: dict[str, Any],
) -> None:
    settings = make_settings(database)
    async with bare_store(settings) as (db, _store):
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)
        for seed in range(5):
            rng = random.Random(seed)
            live = random_statements(rng, live_table)
            bulk = [_retarget(st, bulk_table) for st in live]
            keyed: list[Statement] = [
                Put(single_key_live, {"id": f"k{i % 7}", "n": i})
                if i % 3
                else Remove(single_key_live, {"id": f"k{i % 7}"})
                for i in range(40)
            ]
            async with db.write() as conn:
                for table in (live_table, bulk_table, single_key_live, single_key_bulk):
                    await conn.execute(delete(table))
                await apply_statements(conn, live + keyed)
                writer = BatchWriter(conn)
                await writer.add(bulk + [_retarget(st, single_key_bulk) for st in keyed])
                await writer.flush()
            async with db.read() as conn:
                for ours, theirs in ((bulk_table, live_table), (single_key_bulk, single_key_live)):
                    assert await table_rows(conn, ours) == await table_rows(conn, theirs), seed


def _retarget(st: Statement, table: Table) -> Statement:
    if isinstance(st, Put):
        return Put(table, st.values)
    if isinstance(st, Patch):
        return Patch(table, st.key, st.values)
    assert isinstance(st, Remove)
    return Remove(table, st.key)


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///x.db", "postgresql+asyncpg://u@h/d"])
def test_fast_timestamp_conversion_equals_sqlalchemys(url: str) -> None:
    dialect = create_async_engine(url).dialect
    ours = bind_processor(UTCDateTime(), dialect)
    theirs = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    for moment in MOMENTS:
        assert (ours(moment) if ours else moment) == (theirs(moment) if theirs else moment)


async def test_bulk_read_returns_what_the_store_query_returns(database: dict[str, Any]) -> None:
    async with bare_store(make_settings(database)) as (db, store):
        for i in range(60):
            event = [NoteAdded(f"t{i}", "inbox"), NoteRenamed(f"r{i}"), NoteTagged("red")][i % 3]
            await store.push(note(f"n{i % 5}", event), creator="test")
        head = await store.max_position()
        every = ("note.added", "note.renamed", "note.tagged")
        for types in [("note.added",), every, ("unknown", "note.tagged")]:
            for after, limit in [(0, 7), (0, 100), (13, 5), (59, 10), (60, 10)]:
                async with db.read() as conn:
                    got, reached = await read_events(conn, types, after, head, limit)
                everything = await store.query(
                    EventQuery(event_types=types, position_after=after, position_at_most=head)
                )
                # All of them up to the position reached, which is the head
                # unless `limit` events came first.
                assert got == [e for e in everything if e.position <= reached]
                assert len(got) <= limit
                assert reached == head or len(got) == limit
                assert all(type(e) is StoredEvent for e in got)
