"""The HTTP application: Litestar, with the routes of every enabled plugin, behind the Edge.

Handlers may take these dependencies by name:

- `runtime`: the process's `Runtime`;
- `metrics`: its `Metrics`;
- `instance_id`: the id of the instance the request's host resolved to
  (None only on /debug/ paths, which need no instance).

Errors: an `HTTPException` (bad input included) keeps its status and becomes
`{"error": <reason>, "message": <detail>}` (plus `details` when Litestar has
them, such as which field failed validation); a taken unique value or a
concurrent change is 409; anything else is logged with the request id and
answered with a JSON 500. Protocol plugins register their own handlers for
their own formats on their routers.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.response import Response

from donjon.core.errors import ConcurrencyError, PluginError, UniqueConstraintError
from donjon.core.http.debug import debug_routes
from donjon.core.http.edge import Edge, logged_path
from donjon.core.logs import request_id
from donjon.core.plugins import call_all, collect
from donjon.core.projections.inline import ProjectionVersionError
from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, run_projections: bool = True) -> Edge:
    """Build the ASGI app of `runtime`.

    Its lifespan startup calls the `on_startup` hooks, then (with
    `run_projections`) starts the async projection runner; shutdown stops the
    runner, calls the `on_shutdown` hooks and closes the database pool.
    """
    routes = [
        *debug_routes(runtime),
        *api_routes(runtime),
        *collect(runtime.pm.hook.register_routes, settings=runtime.settings),
    ]
    runner: list[asyncio.Task[None]] = []

    async def startup() -> None:
        await call_all(runtime.pm.hook.on_startup, runtime=runtime)
        if not runtime.db.is_postgres:
            task = asyncio.create_task(_analyze_periodically(runtime), name="sqlite analyze")
            runner.append(task)
        if run_projections and runtime.runner.projections:
            task = asyncio.create_task(runtime.runner.run(), name="async projection runner")
            task.add_done_callback(_report_runner_end)
            runner.append(task)
            log.info(
                "async projections running: %s",
                ", ".join(p.name for p in runtime.runner.projections),
            )
        if run_projections and runtime.event_hooks.subscribers:
            # Before the first request: events pushed from now on reach new subscribers.
            await runtime.event_hooks.prepare()
            task = asyncio.create_task(runtime.event_hooks.run(), name="on_event hooks")
            task.add_done_callback(_report_runner_end)
            runner.append(task)
        log.info(
            "donjon serves %s (listening on %s:%d)",
            runtime.settings.external_url,
            runtime.settings.ListenAddress,
            runtime.settings.Port,
        )

    async def shutdown() -> None:
        for task in runner:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                pass  # already logged by _report_runner_end
            log.info("%s stopped", task.get_name())
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
        exception_handlers={
            HTTPException: http_error,
            UniqueConstraintError: conflict,
            ConcurrencyError: conflict,
            ProjectionVersionError: outdated,
            RecursionError: too_deep,
            Exception: internal_error,
        },
        logging_config=None,
        openapi_config=None,
    )
    return Edge(app, runtime)


ANALYZE_EVERY = 600.0  # seconds


async def _analyze_periodically(runtime: Runtime) -> None:
    """Keep SQLite's planner statistics fresh as tables grow (see Database.analyze)."""
    while True:
        await asyncio.sleep(ANALYZE_EVERY)
        try:
            await runtime.db.analyze()
        except Exception:
            log.warning("refreshing SQLite's planner statistics failed", exc_info=True)


def api_routes(runtime: Runtime) -> list[Any]:
    """The routes of every management API service the plugins register."""
    from donjon.core.api.openapi import openapi_route

    services = collect(runtime.pm.hook.register_api_services, settings=runtime.settings)
    seen: set[str] = set()
    routes: list[Any] = []
    for service in services:
        for rpc in service.rpcs.values():
            if rpc.path in seen:
                raise PluginError(f"management API method {rpc.path} is served twice")
            seen.add(rpc.path)
        routes += service.routes()
    return [*routes, openapi_route(services)]


def _report_runner_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the async projection runner stopped on an error", exc_info=task.exception())


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """An HTTPException as JSON, with its status and headers (such as Allow on a 405).

    Under the management API's paths (`/zitadel.*`) it is a Connect error body,
    as its clients expect: an unknown method is `unimplemented`.
    """
    if request.url.path.startswith("/zitadel.") and exc.status_code in (404, 405):
        code = "unimplemented"
        message = (
            f"{request.url.path.lstrip('/')} is not a method donjon serves"
            if exc.status_code == 404
            else "management API methods are called with POST"
        )
        return Response(
            {"code": code, "message": message}, status_code=exc.status_code, headers=exc.headers
        )
    body: dict[str, Any] = {"error": _reason(exc.status_code), "message": exc.detail}
    if exc.extra:
        body["details"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def conflict(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """409 for a unique value already taken or an aggregate changed concurrently."""
    return Response({"error": "conflict", "message": str(exc)}, status_code=409)


def outdated(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """503 when this process runs an older projection version than the store holds
    (an upgrade is rolling out): another, upgraded process can take the request."""
    log.warning("refused a write on an outdated process: %s", exc)
    return Response(
        {"error": "service_unavailable", "message": f"this donjon process is outdated: {exc}"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[dict[str, Any]]:
    """400 for a request body nested deeper than the decoder goes; any other recursion is a bug."""
    if "deserializing" not in str(exc):
        return internal_error(request, exc)
    return Response(
        {"error": "bad_request", "message": "the request body is nested too deeply"},
        status_code=400,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Log the error with the request id; answer a JSON 500 that names the id, not the error."""
    log.exception(
        "unhandled error on %s %s", request.method, logged_path(request.scope), exc_info=exc
    )
    rid = request_id.get()
    return Response(
        {"error": "internal", "message": f"internal error (request id {rid})"}, status_code=500
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"
