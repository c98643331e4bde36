"""Operations endpoints: /debug/healthz, /debug/ready, /debug/metrics."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_412_PRECONDITION_FAILED

from donjon.core.metrics import CONTENT_TYPE


@get("/debug/healthz", media_type="text/plain", sync_to_thread=False)
def healthz() -> str:
    """Liveness: the process answers."""
    return "ok"


@get("/debug/ready")
async def ready(runtime: Any) -> Response[dict[str, Any]]:
    """Readiness: 200 when the database answers and setup is complete, else 412."""
    problems = await runtime.readiness.problems()
    if problems:
        return Response({"status": "not ready", "problems": problems}, status_code=HTTP_412_PRECONDITION_FAILED)
    return Response({"status": "ok"}, status_code=HTTP_200_OK)


@get("/debug/metrics")
async def metrics(runtime: Any, metrics: Any) -> Response[bytes]:
    """Prometheus text exposition of this process's metrics."""
    return Response(await metrics.render(runtime), media_type=CONTENT_TYPE)


ROUTES = [healthz, ready, metrics]
