"""Serving the app with uvicorn on one port: uvloop and httptools (uvicorn[standard]).

Graceful shutdown: on SIGTERM or SIGINT the server stops accepting
connections, closes idle keep-alive connections, lets requests in flight
finish for up to ShutdownTimeout (then cancels them), runs the app's lifespan
shutdown (async projections stop, `on_shutdown` hooks, pool closed) and
returns, so `donjon start` exits 0. A second SIGINT forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from donjon.core.app import create_app
from donjon.core.runtime import Runtime

log = logging.getLogger("donjon.server")

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def server_config(runtime: Runtime, app: Any = None) -> uvicorn.Config:
    """uvicorn's configuration for `runtime` (Port, ListenAddress, ShutdownTimeout)."""
    settings = runtime.settings
    return uvicorn.Config(
        app if app is not None else create_app(runtime),
        host=settings.ListenAddress,
        port=settings.Port,
        http="auto",  # httptools when installed (uvicorn[standard]), else h11
        log_config=None,
        access_log=False,  # the Edge logs every request with its id
        lifespan="on",
        timeout_graceful_shutdown=settings.ShutdownTimeout.total_seconds(),  # type: ignore[arg-type]
        server_header=False,
    )


class Server(uvicorn.Server):
    """uvicorn's server, except that a signal that led to a clean shutdown ends
    there: uvicorn re-raises it once the server has stopped, which kills the
    process with that signal (exit status 143 for SIGTERM) after a shutdown
    that went well."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            log.info(
                "%s received: shutting down (requests in flight get up to %gs)",
                signal.Signals(sig).name,
                self.config.timeout_graceful_shutdown,
            )
        super().handle_exit(sig, frame)


def describe_stack(config: uvicorn.Config) -> tuple[str, str]:
    """(event loop, HTTP protocol) this server runs on, such as ("uvloop", "httptools")."""
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    protocol = getattr(config, "http_protocol_class", None)
    http = "httptools" if protocol is not None and "httptools" in protocol.__module__ else "h11"
    return loop, http


async def serve(runtime: Runtime, config: uvicorn.Config | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (see the module docstring)."""
    config = config or server_config(runtime)
    if not config.loaded:
        config.load()
    loop, http = describe_stack(config)
    log.info(
        "serving on http://%s:%d (event loop %s, HTTP parser %s)",
        config.host,
        config.port,
        loop,
        http,
    )
    if (loop, http) != ("uvloop", "httptools"):
        log.warning("uvloop and httptools are not both in use: install uvicorn[standard]")
    await Server(config).serve()
    log.info("server stopped")


def run_server(runtime: Runtime) -> None:
    """Serve on a uvloop event loop (asyncio's when uvloop is missing); return after shutdown."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        asyncio.run(serve(runtime))
    else:
        uvloop.run(serve(runtime))
