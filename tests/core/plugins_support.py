"""What the plugin-host tests share: a set-up runtime, an HTTP client, polling.

No tests live here.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient

from donjon.core.instance import list_instances
from donjon.core.plugins import DonjonPluginManager
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner

MASTERKEY = b"0123456789abcdef0123456789abcdef"


async def set_up(settings: Settings, pm: DonjonPluginManager | None = None) -> Runtime:
    """A runtime whose store has its tables and has been through `donjon setup`."""
    runtime = build_runtime(settings, pm=pm, masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    return runtime


async def first_instance(runtime: Runtime) -> str:
    async with runtime.db.read() as conn:
        return str((await list_instances(conn))[0]["id"])


def client_of(app: Any, host: str = "localhost") -> AsyncTestClient[Any]:
    """A client of `app` (its lifespan runs on entry and exit) sending `Host: host`."""
    with warnings.catch_warnings():
        # Litestar warns about a dotless host; instance domains such as localhost are one.
        warnings.filterwarnings("ignore", "The base_url", UserWarning)
        return AsyncTestClient(app=app, base_url=f"http://{host}")


async def eventually(check: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy, or `within` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.02)
