"""What the server tests share: a test plugin, a lifespan runner, a served runtime.

No tests live here. The plugin `servertest` serves a few routes under /test/
and keeps one async projection; the subprocess tests load the very same
plugin through an entry point (see `entry_point_dir`), so a real `donjon
start` has a slow route and an async projection too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from donjon.core import hookimpl
from donjon.core.errors import UniqueConstraintError
from donjon.core.events import StoredEvent
from donjon.core.plugins import DonjonPluginManager, PluginInfo, get_plugin_manager
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.inline import ProjectionVersionError
from donjon.core.projections.statements import Statement
from donjon.core.settings import Settings

PLUGIN_NAME = "servertest"
MASTERKEY = b"0123456789abcdef0123456789abcdef"
log = logging.getLogger("tests.server")


# -- the test plugin ------------------------------------------------------------------


@get("/test/instance", sync_to_thread=False)
def instance_route(instance_id: NamedDependency[str | None]) -> dict[str, Any]:
    """The instance the request's host resolved to."""
    return {"instance_id": instance_id}


@get("/test/slow")
async def slow_route(seconds: FromQuery[float] = 1.0) -> dict[str, Any]:
    """Answers after `seconds`: a request in flight for the shutdown tests."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@get("/test/log", sync_to_thread=False)
def log_route() -> dict[str, Any]:
    """Writes one log record while the request is served."""
    log.info("inside the test route")
    return {"logged": True}


@get("/test/items/{item_id:int}", sync_to_thread=False)
def item_route(item_id: FromPath[int], limit: FromQuery[int] = 10) -> dict[str, Any]:
    """A path parameter and a query parameter that must be integers."""
    return {"item_id": item_id, "limit": limit}


@dataclass
class Greeting:
    name: str
    times: int


@post("/test/greetings", sync_to_thread=False)
def greeting_route(data: JSONBody[Greeting]) -> dict[str, Any]:
    """A JSON body with a shape."""
    return {"greeting": f"hello {data.name}" * data.times}


@get("/test/boom", sync_to_thread=False)
def boom_route() -> None:
    """A bug: raises an error nothing handles."""
    raise RuntimeError("kaboom: the test route failed")


@get("/test/taken", sync_to_thread=False)
def taken_route() -> None:
    """A command whose unique value is taken."""
    raise UniqueConstraintError("Errors.Test.AlreadyExists", unique_type="test", unique_field="x")


@get("/test/outdated", sync_to_thread=False)
def outdated_route() -> None:
    """A push refused because this process runs an older projection version."""
    raise ProjectionVersionError("projection instances is active at version 2; this process runs 1")


class InstancesSeen(Projection):
    """An async projection of `instance.added` that writes nothing: its lag is the evidence."""

    name = "servertest_instances_seen"
    version = 1
    inline = False

    @handles("instance.added")
    def added(self, event: StoredEvent) -> Sequence[Statement]:
        return []


class ServerTestPlugin:
    @hookimpl
    def register_routes(self) -> list[Any]:
        return [
            instance_route,
            slow_route,
            log_route,
            item_route,
            greeting_route,
            boom_route,
            taken_route,
            outdated_route,
        ]

    @hookimpl
    def register_projections(self) -> list[Projection]:
        return [InstancesSeen()]


PLUGIN = ServerTestPlugin()


def plugin_manager(settings: Settings) -> DonjonPluginManager:
    """The installed plugins plus `servertest`."""
    pm = get_plugin_manager(settings)
    pm.add_plugin(PLUGIN, PluginInfo(PLUGIN_NAME, "0", "tests", False, True))
    return pm


def entry_point_dir(root: Path) -> Path:
    """A folder that, on PYTHONPATH, installs `servertest` through the entry-point group."""
    dist = root / "donjon_servertest-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: donjon-servertest\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        f"[donjon.plugins]\n{PLUGIN_NAME} = tests.core.test_server_support:PLUGIN\n"
    )
    return root


# -- serving in-process -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the ASGI app's lifespan startup, then its shutdown when the block ends."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@contextlib.asynccontextmanager
async def client_of(app: Any, host: str = "localhost") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app (lifespan run), sending `Host: host` unless told otherwise."""
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield client
