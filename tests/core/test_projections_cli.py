"""`donjon projections list | rebuild NAME | rebuild --all`, run as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from donjon.core.cli import cli
from donjon.core.config import load_settings
from donjon.core.eventstore.query import EventQuery
from donjon.core.instance import add_instance, instances_table, list_instances
from donjon.core.runtime import build_runtime
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import MASTERKEY

pytestmark = pytest.mark.anyio

DONJON = Path(sys.executable).parent / "donjon"


def donjon(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("DONJON_MASTERKEY", None)
    return subprocess.run(
        [str(DONJON), *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


@pytest.fixture
async def store_with_instances(tmp_path: Path) -> Any:
    """A set-up SQLite store with two more instances; yields (config file, runtime)."""
    config = tmp_path / "donjon.yaml"
    config.write_text(f"Database:\n  sqlite:\n    Path: {tmp_path / 'donjon.db'}\n")
    runtime = build_runtime(load_settings([config], env={}), masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    for i, name in enumerate(["second", "third"]):
        await runtime.store.push(add_instance(f"i{i}", name, [f"{name}.example"]), creator="test")
    try:
        yield config, runtime
    finally:
        await runtime.close()


async def instance_names(runtime: Any) -> list[str]:
    async with runtime.db.read() as conn:
        return sorted(str(i["name"]) for i in await list_instances(conn))


async def test_projections_list_shows_kind_version_status_and_lag(
    store_with_instances: Any,
) -> None:
    config, runtime = store_with_instances
    head = await runtime.store.max_position()

    listed = donjon("projections", "list", config=config)

    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " instances " in line)
    assert row.split("│")[1:-1] and [c.strip() for c in row.split("│")[1:-1]] == [
        "instances", "inline", "1", "active", str(head), "0", "0",
    ]  # fmt: skip
    for projection in runtime.projections:
        assert f" {projection.name} " in listed.stdout


async def test_projections_rebuild_replays_the_store_with_a_progress_bar(
    store_with_instances: Any,
) -> None:
    config, runtime = store_with_instances
    before = await instance_names(runtime)
    head = await runtime.store.max_position()
    events = await runtime.store.query(
        EventQuery(event_types=runtime.projection("instances").event_types)
    )
    async with runtime.db.write() as conn:  # a damaged read model
        await conn.execute(delete(instances_table))

    rebuilt = donjon("projections", "rebuild", "instances", config=config)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"instances: {len(events)} events replayed" in rebuilt.stdout
    bar = next(line for line in rebuilt.stdout.splitlines() if line.startswith("instances "))
    assert "━" in bar and f"{head}/{head}" in bar
    assert await instance_names(runtime) == before == ["donjon", "second", "third"]


async def test_projections_rebuild_all_rebuilds_every_projection(store_with_instances: Any) -> None:
    config, runtime = store_with_instances
    async with runtime.db.write() as conn:
        await conn.execute(delete(instances_table))

    rebuilt = donjon("projections", "rebuild", "--all", config=config)

    assert rebuilt.returncode == 0, rebuilt.stderr
    for projection in runtime.projections:
        assert any(
            line.startswith(f"{projection.name}: ") and line.endswith(" events replayed")
            for line in rebuilt.stdout.splitlines()
        ), rebuilt.stdout
    assert await instance_names(runtime) == ["donjon", "second", "third"]


def test_projections_rebuild_needs_names_or_all(tmp_path: Path) -> None:
    config = tmp_path / "donjon.yaml"
    config.write_text(f"Database:\n  sqlite:\n    Path: {tmp_path / 'donjon.db'}\n")
    runner = CliRunner()

    nothing = runner.invoke(cli, ["projections", "rebuild", "--config", str(config)])
    unknown = runner.invoke(cli, ["projections", "rebuild", "nope", "--config", str(config)])

    assert (
        nothing.exit_code == 2
        and "name the projections to rebuild, or pass --all" in nothing.output
    )
    assert unknown.exit_code == 2 and "unknown projection 'nope'" in unknown.output


async def test_projections_failures_lists_parked_and_retrying_events(
    store_with_instances: Any,
) -> None:
    from donjon.core.projections.state import record_failure

    config, runtime = store_with_instances
    assert "no failed events" in donjon("projections", "failures", config=config).stdout
    [first, second] = await runtime.store.query(EventQuery(limit=2))
    async with runtime.db.write() as conn:
        await record_failure(conn, "instances", first, "ValueError: bad payload", 1)
        await record_failure(conn, "instances", second, "KeyError: 'name'", 3)

    shown = donjon("projections", "failures", "instances", config=config)
    assert shown.returncode == 0, shown.stderr
    assert "parked" in shown.stdout and "retrying" in shown.stdout
    assert "ValueError: bad payload" in shown.stdout and first.type in shown.stdout
    unknown = donjon("projections", "failures", "nope", config=config)
    assert unknown.returncode == 2 and "unknown projection 'nope'" in unknown.stderr
