"""The ASGI layer in front of the Litestar app.

For every HTTP request: a request id (from X-Request-Id or new) in the logs and
the response; the instance resolved from the host (404 when none is served
there; /debug/ needs none); request count and latency metrics by route.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from donjon.core.logs import request_id
from donjon.core.plugins import first_result

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger("donjon.http")

INSTANCE_FREE_PREFIXES = ("/debug/",)


class Edge:
    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            path = scope["path"]
            if not path.startswith(INSTANCE_FREE_PREFIXES):
                host = _host(headers)
                instance_id = await first_result(
                    self.runtime.pm.hook.resolve_instance, host=host, headers=headers, runtime=self.runtime
                )
                if instance_id is None:
                    await _not_found(send_with_id, host)
                    return
                scope.setdefault("state", {})["instance_id"] = instance_id
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]
            self.runtime.metrics.requests.labels(method, route, str(status[0])).inc()
            self.runtime.metrics.latency.labels(method, route).observe(elapsed)
            log.info(
                "%s %s %d %.1fms", method, scope["path"], status[0], elapsed * 1000,
                extra={"method": method, "path": scope["path"], "status": status[0],
                       "duration_ms": round(elapsed * 1000, 2)},
            )
            request_id.reset(token)


def _host(headers: dict[str, str]) -> str:
    host = headers.get("host", "")
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1].lower()
    return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


async def _not_found(send: Any, host: str) -> None:
    body = msgspec.json.encode(
        {"error": "instance_not_found", "message": f"no instance is served at host {host!r}"}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
