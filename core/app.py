"""The HTTP application: Litestar, with the routes of every enabled plugin."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.response import Response

from donjon.core.http.debug import ROUTES as DEBUG_ROUTES
from donjon.core.http.edge import Edge
from donjon.core.plugins import call_all, collect
from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, run_projections: bool = True) -> Edge:
    """Build the ASGI app of `runtime`; async projections follow the store while it runs."""
    routes = [*DEBUG_ROUTES, *collect(runtime.pm.hook.register_routes, settings=runtime.settings)]
    runner_task: list[asyncio.Task[None]] = []

    async def startup() -> None:
        await call_all(runtime.pm.hook.on_startup, runtime=runtime)
        if run_projections:
            runner_task.append(asyncio.create_task(runtime.runner.run(), name="projection runner"))

    async def shutdown() -> None:
        for task in runner_task:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await call_all(runtime.pm.hook.on_shutdown, isolate=True, runtime=runtime)
        await runtime.db.dispose()

    def instance_id(request: Request[Any, Any, Any]) -> str | None:
        return request.scope.get("state", {}).get("instance_id")

    app = Litestar(
        route_handlers=routes,
        dependencies={
            "runtime": Provide(lambda: runtime, sync_to_thread=False),
            "metrics": Provide(lambda: runtime.metrics, sync_to_thread=False),
            "instance_id": Provide(instance_id, sync_to_thread=False),
        },
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers={Exception: _internal_error},
        logging_config=None,
        openapi_config=None,
    )
    return Edge(app, runtime)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    if isinstance(exc, HTTPException):
        return Response({"error": "request_failed", "message": exc.detail}, status_code=exc.status_code)
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return Response({"error": "internal", "message": "internal error"}, status_code=500)
