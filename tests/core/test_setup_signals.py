"""A real `donjon setup` stopped during a long step resumes to the state of an
uninterrupted run: SIGTERM records the step failed and exits 143; after SIGKILL
the step stays `started` and the next setup takes it over once its lease
expires, with no cleanup.

The long step: the store holds many `instance.domain.added` events and the
`instances` projection is outdated (as after an upgrade that changed it), so
setup rebuilds it in small batches (RebuildBulkLimit). Every test starts from
a copy of one seeded store per backend, and compares the projection tables
with those of an uninterrupted setup on another copy.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from donjon.core.runtime import build_runtime
from tests.conftest import (
    MASTERKEY,
    create_pg_database,
    drop_pg_database,
    make_settings,
    postgres_database,
    sqlite_database,
)
from tests.core.test_setup_support import (
    Donjon,
    copy_sqlite,
    outdate_projection,
    pg_admin_dsn,
    pg_execute,
    prepared_runtime,
    projection_rows,
    query,
    seed_domains,
    step_events,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.slow]

SEEDED_EVENTS = 20_000
REBUILD_BULK_LIMIT = 250
STEP = "projection.instances"
SETUP_OVERRIDES: dict[str, Any] = {
    "Projections": {"Customizations": {"instances": {"RebuildBulkLimit": REBUILD_BULK_LIMIT}}},
    "Setup": {"LeaseDuration": "2s"},
}


@dataclass
class SeededStore:
    """One seeded store per backend, and what an uninterrupted setup makes of it."""

    kind: str
    source: str  # SQLite file or PostgreSQL DSN
    expected_rows: dict[str, list[dict[str, Any]]]
    made: list[str]

    def copy(self, tmp_path: Path) -> dict[str, Any]:
        """The Database section of a fresh copy of the seeded store."""
        if self.kind == "sqlite":
            target = tmp_path / f"copy-{secrets.token_hex(3)}.db"
            copy_sqlite(Path(self.source), target)
            return sqlite_database(target)
        name = f"donjon_test_{secrets.token_hex(6)}"
        template = Path(self.source).name
        asyncio.run(
            pg_execute(pg_admin_dsn(self.source), f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        )
        dsn = pg_admin_dsn(self.source, name)
        self.made.append(dsn)
        return postgres_database(dsn)


async def _seed(database: dict[str, Any]) -> None:
    runtime = await prepared_runtime(database)
    try:
        await seed_domains(runtime, SEEDED_EVENTS)
        await outdate_projection(runtime, "instances")
    finally:
        await runtime.close()


async def _setup_and_read(database: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Run setup uninterrupted (in this process) and return the projection tables."""
    from donjon.core.setup.runner import SetupRunner

    runtime = build_runtime(make_settings(database, **SETUP_OVERRIDES), masterkey=MASTERKEY)
    try:
        assert STEP in await SetupRunner(runtime).run()
        return await projection_rows(runtime)
    finally:
        await runtime.close()


async def _read(database: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    runtime = build_runtime(make_settings(database), masterkey=MASTERKEY)
    try:
        return await projection_rows(runtime)
    finally:
        await runtime.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededStore]:
    made: list[str] = []
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("seeded") / "seeded.db"
        asyncio.run(_seed(sqlite_database(path)))
        store = SeededStore("sqlite", str(path), {}, made)
    else:
        dsn = create_pg_database()
        made.append(dsn)
        asyncio.run(_seed(postgres_database(dsn)))
        store = SeededStore("postgres", dsn, {}, made)
    try:
        reference = store.copy(tmp_path_factory.mktemp("reference"))
        store.expected_rows = asyncio.run(_setup_and_read(reference))
        assert len(store.expected_rows["instance_domains"]) == SEEDED_EVENTS + 1
        yield store
    finally:
        for dsn in reversed(made):
            drop_pg_database(dsn)


def start_setup(tmp_path: Path, database: dict[str, Any], name: str) -> Donjon:
    config = write_config(tmp_path / f"{name}.yaml", database, **SETUP_OVERRIDES)
    key = tmp_path / "masterkey"
    key.write_bytes(MASTERKEY)
    return Donjon(
        tmp_path, "setup", "--config", str(config), "--masterkeyFile", str(key), name=name
    )


def rebuild_state(database: dict[str, Any]) -> tuple[int, str, int] | None:
    rows = query(
        database, "SELECT version, status, position FROM projection_states WHERE name = 'instances'"
    )
    return rows[0] if rows else None  # type: ignore[return-value]


def wait_for_rebuild_progress(database: dict[str, Any], process: Donjon) -> int:
    """Wait until the rebuild has committed a batch (the outdated state had version 0)."""

    def moved() -> bool:
        if process.process.poll() is not None:
            raise AssertionError(f"setup exited early:\n{process.output()}")
        state = rebuild_state(database)
        return state is not None and state[0] == 1 and state[1] == "rebuilding" and state[2] > 0

    wait_until(moved, timeout=20, what="the rebuild committing its first batch", every=0.02)
    state = rebuild_state(database)
    assert state is not None
    return state[2]


def assert_like_an_uninterrupted_run(seeded: SeededStore, database: dict[str, Any]) -> None:
    assert rebuild_state(database)[:2] == (1, "active")  # type: ignore[index]
    assert [t for t, _ in step_events(database, STEP)][-1] == "system.migration.done"
    assert asyncio.run(_read(database)) == seeded.expected_rows


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_records_the_running_step_failed_exits_128_plus_it_and_the_rerun_completes_it(
    seeded: SeededStore, tmp_path: Path, signum: signal.Signals
) -> None:
    database = seeded.copy(tmp_path)
    setup = start_setup(tmp_path, database, "interrupted")
    try:
        reached = wait_for_rebuild_progress(database, setup)
        setup.signal(signum)
        status = setup.wait(20)
    finally:
        setup.kill()

    output = setup.output()
    assert status == 128 + signum, output  # 143 for SIGTERM, 130 for SIGINT
    assert f"{signum.name} received; cancelling" in output
    cancelled = (
        f"step {STEP} canceled by {signum.name}; recorded it failed: the next setup resumes it"
    )
    assert cancelled in output
    event_type, payload = step_events(database, STEP)[-1]
    assert event_type == "system.migration.failed"
    assert payload["error"] == f"canceled by {signum.name} while running"
    version, status_text, position = rebuild_state(database)  # type: ignore[misc]
    assert (version, status_text) == (1, "rebuilding")
    assert position >= reached  # what was rebuilt is kept for the resume

    rerun = start_setup(tmp_path, database, "rerun")
    assert rerun.wait(60) == 0, rerun.output()
    assert_like_an_uninterrupted_run(seeded, database)


def test_after_sigkill_the_next_setup_takes_the_step_over_once_its_lease_expires(
    seeded: SeededStore, tmp_path: Path
) -> None:
    database = seeded.copy(tmp_path)
    setup = start_setup(tmp_path, database, "killed")
    try:
        wait_for_rebuild_progress(database, setup)
        setup.signal(signal.SIGKILL)
        assert setup.wait(10) == -signal.SIGKILL
    finally:
        setup.kill()

    event_type, payload = step_events(database, STEP)[-1]
    assert event_type == "system.migration.started"  # nobody recorded anything
    holder = payload["holder"]
    assert query(database, "SELECT holder FROM setup_leases") == [(holder,)]

    rerun = start_setup(tmp_path, database, "rerun")
    assert rerun.wait(60) == 0, rerun.output()
    output = rerun.output()
    assert f"step {STEP} was left started (lease of {holder} expired at" in output
    assert "taking it over" in output
    types_ = [t.removeprefix("system.migration.") for t, _ in step_events(database, STEP)]
    assert types_[-4:] == ["started", "failed", "started", "done"]
    assert query(database, "SELECT holder FROM setup_leases") == []
    assert_like_an_uninterrupted_run(seeded, database)
