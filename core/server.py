"""Serving the app with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import uvicorn

from donjon.core.app import create_app
from donjon.core.runtime import Runtime


async def serve(runtime: Runtime) -> None:
    """Serve until SIGTERM/SIGINT, then finish requests in flight (ShutdownTimeout)."""
    settings = runtime.settings
    config = uvicorn.Config(
        create_app(runtime),
        host=settings.ListenAddress,
        port=settings.Port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.ShutdownTimeout.total_seconds()),
        server_header=False,
    )
    await uvicorn.Server(config).serve()


def run_server(runtime: Runtime) -> None:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        asyncio.run(serve(runtime))
    else:
        uvloop.run(serve(runtime))
