"""`on_event` survives a SIGKILL: a donjon process killed in the middle of a batch loses
nothing; the next process delivers the unfinished batch again (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from donjon.core import hookimpl
from donjon.core.events import StoredEvent
from donjon.core.runtime import build_runtime
from donjon.core.settings import Settings
from tests.core.plugins_support import first_instance, set_up
from tests.core.test_event_hooks import DoorEvents, Knocked, knock, manager

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
KNOCKS = 10


class FileDoorman(DoorEvents):
    """Writes each knock's position to a file (flushed); hangs on knock `block_on`."""

    def __init__(self, log: str, block_on: int) -> None:
        self.log = log
        self.block_on = block_on

    @hookimpl
    async def on_event(self, event: StoredEvent) -> None:
        if event.type != Knocked.TYPE:
            return
        if event.payload["n"] == self.block_on:
            _touch(self.log + ".blocked")
            await asyncio.sleep(3600)  # until SIGKILL
        _append(self.log, event.position)


def _touch(path: str) -> None:
    Path(path).touch()


def _append(path: str, position: int) -> None:
    with open(path, "a") as out:
        out.write(f"{position}\n")
        out.flush()
        os.fsync(out.fileno())


# The child: a runtime with FileDoorman whose event hook runner follows the store.
CHILD = """
import asyncio, json, sys
from donjon.core.runtime import build_runtime
from tests.conftest import make_settings
from tests.core.plugins_support import MASTERKEY
from tests.core.test_event_hooks import manager
from tests.core.test_event_hooks_kill import FileDoorman

async def main(database: str, log: str, block_on: str) -> None:
    settings = make_settings(
        json.loads(database), Projections={"RequeueEvery": "20ms", "BulkLimit": 5}
    )
    runtime = build_runtime(
        settings, pm=manager(settings, FileDoorman(log, int(block_on))), masterkey=MASTERKEY
    )
    await runtime.event_hooks.run()

asyncio.run(main(*sys.argv[1:]))
"""


async def spawn(database: dict[str, Any], log: Path, block_on: int) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, json.dumps(database), str(log), str(block_on),
        cwd=ROOT, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def logged(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


async def until(check: Any, child: Any, within: float = 60.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():
            return
        if child.returncode is not None:
            _, err = await child.communicate()
            raise AssertionError(f"the child exited: {err.decode()[-2000:]}")
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_process_killed_mid_batch_loses_no_event(
    settings: Settings, database: dict[str, Any], tmp_path: Path
) -> None:
    log = tmp_path / "knocks.log"
    runtime = await set_up(settings, manager(settings, FileDoorman(str(log), 0)))
    try:
        await runtime.event_hooks.prepare()  # the plugin's position, before the knocks
        instance_id = await first_instance(runtime)
        positions = await knock(runtime, instance_id, *range(1, KNOCKS + 1))
    finally:
        await runtime.close()

    first = await spawn(database, log, block_on=7)
    try:
        await until(lambda: Path(f"{log}.blocked").exists(), first)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    # Knocks 1-5 committed as a batch; 6 was handled, its batch (6-10) never committed.
    assert logged(log) == positions[:6]

    second = await spawn(database, log, block_on=-1)
    try:
        await until(lambda: len(logged(log)) >= KNOCKS + 1, second)
    finally:
        second.send_signal(signal.SIGKILL)
        await second.wait()
    assert logged(log) == positions[:6] + positions[5:]  # 6 again, then the rest, in order

    check = build_runtime(settings, pm=manager(settings, FileDoorman(str(log), 0)))
    try:
        from donjon.core.projections.state import get_state

        async with check.db.read() as conn:
            state = await get_state(conn, "on_event:doorman")
        assert state is not None and state.position >= positions[-1]
    finally:
        await check.close()
