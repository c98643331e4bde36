"""Statements mean the same executed one by one (live) or folded in bulk (rebuild)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, delete

from donjon.core.database import Database
from donjon.core.projections.statements import (
    BatchWriter,
    Patch,
    PatchWhere,
    Put,
    Remove,
    RemoveWhere,
    Statement,
    apply_statements,
)
from tests.conftest import make_settings
from tests.core.test_projections_support import table_rows

pytestmark = pytest.mark.anyio

# Random histories per database; raise it to explore further (3000 take minutes).
SEEDS = int(os.environ.get("DONJON_TEST_STATEMENT_SEEDS", "30"))

metadata = MetaData()


def items_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("shelf", Integer, primary_key=True),
        Column("slot", Text, primary_key=True),
        Column("grp", Text, nullable=True),
        Column("amount", Integer, nullable=True),
        Column("label", Text, nullable=True),
    )


live_table = items_table("stmt_live")
bulk_table = items_table("stmt_bulk")

# A statement for either table: the same random choice is made once and
# instantiated for both.
Maker = Callable[[Table], Statement]


def random_statement(rng: random.Random) -> Maker:
    key = {"shelf": rng.randrange(3), "slot": rng.choice("xyz")}
    grp = rng.choice(["g1", "g2", None])
    amount = rng.randrange(100)
    kind = rng.choices(
        [
            "put",
            "put_partial",
            "patch",
            "patch_two",
            "increment",
            "remove",
            "patch_where",
            "remove_where",
        ],
        weights=[5, 2, 4, 2, 2, 2, 2, 1],
    )[0]
    if kind == "put":
        values = {**key, "grp": grp, "amount": amount, "label": f"l{amount}"}
        return lambda t: Put(t, values)
    if kind == "put_partial":  # the columns it leaves out become NULL
        values = {**key, "amount": amount}
        return lambda t: Put(t, values)
    if kind == "patch":
        return lambda t: Patch(t, key, {"amount": amount})
    if kind == "patch_two":
        return lambda t: Patch(t, key, {"grp": grp, "label": f"p{amount}"})
    if kind == "increment":
        return lambda t: Patch(t, key, {"amount": t.c.amount + 1})
    if kind == "remove":
        return lambda t: Remove(t, key)
    if kind == "patch_where":
        where = {"grp": grp or "g1"}
        return lambda t: PatchWhere(t, where, {"label": f"w{amount}"})
    where = {"grp": grp or "g2"}
    return lambda t: RemoveWhere(t, where)


async def run_sequence(db: Database, seed: int) -> None:
    """Replay one random history into both tables and compare them."""
    rng = random.Random(seed)
    start = [random_statement(rng) for _ in range(rng.randrange(4))]
    events = [
        [random_statement(rng) for _ in range(rng.randrange(1, 4))]
        for _ in range(rng.randrange(5, 40))
    ]
    flush_after = {i for i in range(len(events)) if rng.random() < 0.2}
    async with db.write() as conn:
        for table in (live_table, bulk_table):
            await conn.execute(delete(table))
            # Rows that exist before the batch: the writer must act on those too.
            await apply_statements(conn, [make(table) for make in start])
        for event in events:
            await apply_statements(conn, [make(live_table) for make in event])
        writer = BatchWriter(conn)
        for i, event in enumerate(events):
            await writer.add([make(bulk_table) for make in event])
            if i in flush_after:
                await writer.flush()
        await writer.flush()
        live = await table_rows(conn, live_table)
        bulk = await table_rows(conn, bulk_table)
    assert bulk == live, f"seed {seed}"


async def test_batch_writer_leaves_the_same_rows_as_statements_one_by_one(
    database: dict[str, Any],
) -> None:
    db = Database.from_settings(make_settings(database).Database)
    try:
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)
        for seed in range(SEEDS):
            await run_sequence(db, seed)
    finally:
        await db.dispose()


async def test_statement_semantics_on_one_row(database: dict[str, Any]) -> None:
    """Put replaces the whole row, Patch of a missing row does nothing, Where matches values."""
    db = Database.from_settings(make_settings(database).Database)
    key = {"shelf": 1, "slot": "x"}
    try:
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)
            await apply_statements(
                conn,
                [
                    Patch(live_table, key, {"amount": 1}),
                    Put(live_table, {**key, "grp": "g1", "amount": 2, "label": "a"}),
                    Put(live_table, {**key, "amount": 3}),
                    Patch(live_table, key, {"grp": "g1"}),
                    Put(live_table, {"shelf": 2, "slot": "y", "grp": "g1"}),
                    PatchWhere(live_table, {"grp": "g1"}, {"label": "both"}),
                    Remove(live_table, {"shelf": 2, "slot": "y"}),
                    Patch(live_table, key, {"amount": live_table.c.amount * 10}),
                ],
            )
            assert await table_rows(conn, live_table) == [
                {"shelf": 1, "slot": "x", "grp": "g1", "amount": 30, "label": "both"}
            ]
            await apply_statements(conn, [RemoveWhere(live_table, {"grp": "g1"})])
            assert await table_rows(conn, live_table) == []
    finally:
        await db.dispose()
