"""The actions machinery of one serving process: its HTTP client and its outbox loops.

Started by the plugin's `on_startup` and stopped by `on_shutdown`; one per runtime.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from donjon.actions.cache import ExecutionCache
from donjon.actions.outbound import TargetClient
from donjon.actions.outbox import Outbox

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

# Kept on the runtime itself, so they live and die with it (a table keyed by
# id(runtime) handed a new runtime at a reused address the old one's cache,
# whose database was gone).
_WORKER = "_donjon_actions_worker"
# The client of a runtime that serves without the outbox (an app whose lifespan did not run).
_CLIENT = "_donjon_actions_client"
_CACHE = "_donjon_actions_cache"


class ActionsWorker:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings.Actions
        self.client = TargetClient(runtime.keys, list(settings.HTTP.AllowedHosts))
        self.outbox = Outbox(runtime.db, runtime.store, settings, self.client)
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.runtime.store.listeners.append(self.outbox.notify)
        self._task = asyncio.create_task(self.outbox.run(), name="actions outbox")
        self._task.add_done_callback(_report_end)

    async def stop(self) -> None:
        if self.outbox.notify in self.runtime.store.listeners:
            self.runtime.store.listeners.remove(self.outbox.notify)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                pass  # already logged by _report_end
        await self.client.close()


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the actions outbox stopped on an error", exc_info=task.exception())


def worker_of(runtime: Runtime) -> ActionsWorker | None:
    return vars(runtime).get(_WORKER)


def client_of(runtime: Runtime) -> TargetClient:
    """The runtime's HTTP client for targets (its worker's, else one made on first use)."""
    worker = worker_of(runtime)
    if worker is not None:
        return worker.client
    client: TargetClient | None = vars(runtime).get(_CLIENT)
    if client is None:
        allowed = list(runtime.settings.Actions.HTTP.AllowedHosts)
        client = TargetClient(runtime.keys, allowed)
        setattr(runtime, _CLIENT, client)
    return client


def cache_of(runtime: Runtime) -> ExecutionCache:
    """The runtime's cache of targets and executions (made and subscribed on first use)."""
    cache: ExecutionCache | None = vars(runtime).get(_CACHE)
    if cache is None:
        ttl = runtime.settings.Actions.ExecutionCacheTTL.total_seconds()
        cache = ExecutionCache(runtime.db, ttl)
        setattr(runtime, _CACHE, cache)
        runtime.store.listeners.append(cache.notify)
    return cache


async def close_client(runtime: Runtime) -> None:
    cache = vars(runtime).pop(_CACHE, None)
    if cache is not None and cache.notify in runtime.store.listeners:
        runtime.store.listeners.remove(cache.notify)
    client = vars(runtime).pop(_CLIENT, None)
    if client is not None:
        await client.close()


async def start(runtime: Runtime) -> None:
    worker = ActionsWorker(runtime)
    setattr(runtime, _WORKER, worker)
    worker.start()
    log.info("actions outbox running")


async def stop(runtime: Runtime) -> None:
    worker = vars(runtime).pop(_WORKER, None)
    if worker is not None:
        await worker.stop()
    await close_client(runtime)
