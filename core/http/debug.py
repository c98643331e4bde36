"""Operations endpoints: /debug/healthz, /debug/ready, /debug/metrics.

They need no instance (any Host is accepted) and are meant for probes and
scrapers on the same port as everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_412_PRECONDITION_FAILED

from donjon.core.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

NO_STORE = {"cache-control": "no-store"}


def debug_routes(runtime: Runtime) -> list[Any]:
    """The operations routes of `runtime`; /debug/metrics only when Metrics.Enabled."""

    @get("/debug/healthz", media_type="text/plain", sync_to_thread=False, response_headers=NO_STORE)
    def healthz() -> str:
        """Liveness: 200 `ok` whenever the process answers; checks nothing else."""
        return "ok"

    @get("/debug/ready", response_headers=NO_STORE)
    async def ready() -> Response[dict[str, Any]]:
        """Readiness: 200 `{"status": "ok"}` when the database answers and setup is
        complete, else 412 `{"status": "not ready", "problems": [...]}`."""
        problems = await runtime.readiness.problems()
        if problems:
            return Response(
                {"status": "not ready", "problems": problems},
                status_code=HTTP_412_PRECONDITION_FAILED,
            )
        return Response({"status": "ok"}, status_code=HTTP_200_OK)

    @get("/debug/metrics", response_headers=NO_STORE)
    async def metrics() -> Response[bytes]:
        """Prometheus text exposition of this process's metrics."""
        return Response(await runtime.metrics.render(runtime), media_type=CONTENT_TYPE)

    return [healthz, ready, *([metrics] if runtime.settings.Metrics.Enabled else [])]
