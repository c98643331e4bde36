"""The ASGI layer in front of the Litestar app.

For every HTTP request, in this order:

1. a request id: the client's `X-Request-Id` when it is a plausible id (1 to
   128 printable ASCII characters, no spaces), else a new one; it tags every
   log record written while the request is served and is sent back in the
   `X-Request-Id` response header;
2. the instance, resolved from the Host header through the `resolve_instance`
   hook (the core answers from the instance domains). No instance → 404 JSON
   `instance_not_found`; the lookup failing (database away) → 503 JSON.
   Paths under `/debug/` need no instance;
3. the app; an exception that escapes it is logged with the request id and
   answered with a JSON 500 when no response has started;
4. one log line and the request count and latency metrics, labelled by the
   route template (never the raw path, so labels stay few).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from sqlalchemy.exc import DBAPIError

from donjon.core.http.readiness import describe
from donjon.core.logs import request_id
from donjon.core.plugins import first_result

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger("donjon.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INSTANCE_FREE_PREFIXES = ("/debug/",)
REQUEST_ID_HEADER = b"x-request-id"
_PLAUSIBLE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# Methods get their own metrics label; any other (clients may send anything) is "OTHER".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Edge:
    """Wraps `app` (the Litestar app) with request ids, instance resolution, logs and metrics.

    Lifespan and websocket scopes pass through untouched. Handlers read the
    resolved instance id from `scope["state"]["instance_id"]` (the app's
    `instance_id` dependency).
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = choose_request_id(headers.get("x-request-id"))
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = list(message.get("headers", []))
                if not any(name.lower() == REQUEST_ID_HEADER for name, _ in sent):
                    sent.append((REQUEST_ID_HEADER, rid.encode()))
                message["headers"] = sent
            await send(message)

        try:
            if not scope["path"].startswith(INSTANCE_FREE_PREFIXES):
                host = request_host(headers.get("host", ""))
                try:
                    instance_id = await first_result(
                        self.runtime.pm.hook.resolve_instance,
                        host=host,
                        headers=headers,
                        runtime=self.runtime,
                    )
                except Exception as exc:
                    if isinstance(exc, DBAPIError | OSError | TimeoutError):
                        log.warning(
                            "resolving the instance of host %r failed: %s", host, describe(exc)
                        )
                    else:
                        log.exception("resolving the instance of host %r failed", host)
                    await send_json(
                        send_with_id,
                        503,
                        {
                            "error": "unavailable",
                            "message": f"the instance of host {host!r} cannot be looked up"
                            f" right now; retry later (request id {rid})",
                        },
                    )
                    return
                if instance_id is None:
                    await send_json(
                        send_with_id,
                        404,
                        {
                            "error": "instance_not_found",
                            "message": f"no instance is served at host {host!r}; "
                            "check the Host header against ExternalDomain and the instance domains",
                        },
                    )
                    return
                scope.setdefault("state", {})["instance_id"] = instance_id
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], logged_path(scope))
            if status == 0:
                await send_json(
                    send_with_id,
                    500,
                    {"error": "internal", "message": f"internal error (request id {rid})"},
                )
        finally:
            self._observe(scope, status or 500, time.perf_counter() - started)
            request_id.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        route = scope.get("path_template") or "unmatched"
        metrics = self.runtime.metrics
        metrics.requests.labels(method, route, str(status)).inc()
        metrics.latency.labels(method, route).observe(elapsed)
        path = logged_path(scope)
        # Probes hit /debug/ every few seconds: keep them out of the info log.
        level = logging.DEBUG if scope["path"].startswith(INSTANCE_FREE_PREFIXES) else logging.INFO
        log.log(
            level,
            "%s %s %d %.1fms",
            scope["method"],
            path,
            status,
            elapsed * 1000,
            extra={
                "method": scope["method"],
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )


def logged_path(scope: Scope) -> str:
    """The request's path as sent, still percent-encoded, without the query string.

    What logs show: a decoded path could carry newlines into text logs, and a
    query string can hold codes or tokens.
    """
    raw = scope.get("raw_path")
    if raw:
        return bytes(raw).split(b"?", 1)[0].decode("latin-1")
    return quote(scope["path"], safe="/:@!$&'()*+,;=-._~")


def choose_request_id(given: str | None) -> str:
    """The client's request id when plausible (1-128 printable ASCII, no spaces), else a new one."""
    if given and _PLAUSIBLE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def request_host(host_header: str) -> str:
    """The Host header's host, lower-cased, without port or trailing dot.

    An IPv6 literal keeps its brackets (`[::1]:8080` → `[::1]`), the form it
    has in a URL and so in ExternalDomain. A header that is not a valid
    host[:port] is returned lower-cased as it is: it matches no domain.
    """
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end != -1 and (end == len(host) - 1 or host[end + 1 :].startswith(":")):
            return host[: end + 1]
        return host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".") if host != "." else host


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Send a complete JSON response."""
    payload = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
