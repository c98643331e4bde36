"""What the setup, init, config and master key tests share. No tests live here.

- `Donjon`: a real `donjon` subprocess (.venv/bin/donjon) with a config file,
  a master key file, a clean environment (no inherited DONJON_*) and its
  output in a log file.
- `SetupTestPlugin`: a plugin whose migrations a subprocess can load through
  the entry point group (`entry_point_dir`), with a step that fails on demand.
- Store helpers: prepare a store in-process, seed many events, copy a store,
  read tables from SQLite or PostgreSQL without donjon.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from donjon.core import hookimpl
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.eventstore.schema import projection_states
from donjon.core.instance import AGGREGATE, InstanceDomainAdded, list_instances
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.setup.init import create_tables
from donjon.core.setup.migrations import Migration, StepContext
from donjon.core.setup.runner import SetupRunner
from tests.conftest import MASTERKEY, make_settings

REPO = Path(__file__).parents[2]
DONJON = Path(sys.executable).parent / "donjon"
PLUGIN_NAME = "setuptest"


# -- a plugin for subprocesses ------------------------------------------------------------


async def flaky_step(ctx: StepContext) -> dict[str, Any]:
    """Fails when the environment has DONJON_TEST_FAIL_STEP=1."""
    if os.environ.get("DONJON_TEST_FAIL_STEP") == "1":
        raise RuntimeError("the flaky step was told to fail")
    return {"ok": True}


class SetupTestPlugin:
    @hookimpl
    def register_migrations(self) -> list[Migration]:
        return [Migration("setuptest.flaky", flaky_step, description="fails on demand")]


PLUGIN = SetupTestPlugin()


def entry_point_dir(root: Path) -> Path:
    """A folder that, on PYTHONPATH, installs `setuptest` through the entry-point group."""
    dist = root / "donjon_setuptest-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: donjon-setuptest\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        f"[donjon.plugins]\n{PLUGIN_NAME} = tests.core.test_setup_support:PLUGIN\n"
    )
    return root


# -- donjon subprocesses ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, database: dict[str, Any], **overrides: Any) -> Path:
    """A --config file holding `database` as the Database section, plus `overrides`."""
    path.write_text(yaml.safe_dump({"Database": database, **overrides}))
    return path


class Donjon:
    """One `donjon <args>` subprocess; stdout and stderr go to `log_file`.

    The environment is this process's without DONJON_* variables, plus `env`;
    with `plugin_dir`, the `setuptest` plugin is installed for it.
    """

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        plugin_dir: Path | None = None,
        name: str = "donjon",
    ) -> None:
        self.log_file = tmp_path / f"{name}-{time.monotonic_ns()}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DONJON_")}
        paths = [str(plugin_dir)] if plugin_dir else []
        environment["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO)])
        environment.update(env or {})
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [str(DONJON), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=tmp_path,
            )

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"donjon did not exit within {timeout}s:\n{self.output()}"
            ) from None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def terminate(self, timeout: float = 20) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")


def donjon(tmp_path: Path, *args: str, timeout: float = 60, **kwargs: Any) -> tuple[int, str]:
    """Run `donjon <args>` to completion: (exit status, output)."""
    process = Donjon(tmp_path, *args, **kwargs)
    status = process.wait(timeout)
    return status, process.output()


# -- stores -----------------------------------------------------------------------------


async def prepared_runtime(database: dict[str, Any], **overrides: Any) -> Runtime:
    """A runtime on `database` with the tables created, MASTERKEY recorded and setup run,
    as `donjon init` and `donjon setup` leave it (close it after)."""
    runtime = build_runtime(make_settings(database, **overrides), masterkey=MASTERKEY)
    await create_tables(runtime.db)
    assert runtime.keys is not None
    await runtime.keys.verify()
    await SetupRunner(runtime).run()
    return runtime


async def seed_domains(runtime: Runtime, count: int) -> None:
    """Append `count` instance.domain.added events to the first instance, in one push
    that skips the inline projections (setup rebuilds them; see `outdate_projection`)."""
    async with runtime.db.read() as conn:
        instance_id = str((await list_instances(conn))[0]["id"])
    handlers = list(runtime.store.inline_handlers)
    runtime.store.inline_handlers.clear()
    try:
        events = [InstanceDomainAdded(domain=f"d{i}.seed.example") for i in range(count)]
        aggregate = Aggregate(AGGREGATE, instance_id, instance_id, instance_id)
        await runtime.store.push(AggregateChanges(aggregate, events), creator="seed")
    finally:
        runtime.store.inline_handlers[:] = handlers


async def outdate_projection(runtime: Runtime, name: str) -> None:
    """Make the stored version of projection `name` stale, as after an upgrade that
    changed it: the next setup rebuilds it."""
    async with runtime.db.write() as conn:
        await conn.execute(
            update(projection_states).where(projection_states.c.name == name).values(version=0)
        )


async def projection_rows(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    """Every row of every projection table, by table, in primary key order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    async with runtime.db.read() as conn:
        for projection in runtime.projections:
            for table in projection.tables:
                order = list(table.primary_key.columns) or list(table.columns)
                result = await conn.execute(select(table).order_by(*order))
                rows[table.name] = [dict(r._mapping) for r in result]
    return rows


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (WAL included)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def pg_admin_dsn(dsn: str, database: str = "postgres") -> str:
    return make_url(dsn).set(database=database).render_as_string(hide_password=False)


async def pg_execute(dsn: str, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def query(database: dict[str, Any], sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the store of `database` (qmark parameters on SQLite, $n on
    PostgreSQL), read without donjon, while donjon processes may be writing."""
    dsn = database.get("postgres", {}).get("DSN")
    if not dsn:
        conn = sqlite3.connect(database["sqlite"]["Path"], timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def step_events(database: dict[str, Any], step: str) -> list[tuple[str, dict[str, Any]]]:
    """(event type, payload) of the record of setup step `step`, oldest first."""
    import json

    marker = "$1" if database.get("postgres", {}).get("DSN") else "?"
    rows = query(
        database,
        "SELECT event_type, payload FROM events WHERE aggregate_type = 'system'"
        f" AND aggregate_id = {marker} ORDER BY sequence",
        step,
    )
    return [(t, p if isinstance(p, dict) else json.loads(p)) for t, p in rows]


def wait_until(condition: Any, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s: {what}")


def types(events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    return [t.removeprefix("system.migration.") for t, _ in events]
