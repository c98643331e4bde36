"""Prometheus metrics of one process: requests, latencies, pushed events, projection lag.

Every runtime has its own registry (so tests can build several). Served on
`/debug/metrics` when Metrics.Enabled is true; the names are listed in
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from donjon.core.events import StoredEvent
from donjon.core.http.readiness import describe

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

# generate_latest's output (names escaped to underscores) is the classic text
# format, which every Prometheus version reads. (The HTTP layer adds the charset.)
CONTENT_TYPE = "text/plain; version=0.0.4"
# A scrape must not hang on a database that went away.
STATUS_TIMEOUT = 5.0


class Metrics:
    """The collectors of one process; see `render` for what a scrape reads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "donjon_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "donjon_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.events_pushed = Counter(
            "donjon_events_pushed",
            "Events pushed by this process, by aggregate type",
            ["aggregate_type"],
            registry=self.registry,
        )
        self.database_up = Gauge(
            "donjon_database_up",
            "1 when the last scrape could read the projection states from the database, else 0",
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "donjon_projection_lag_events",
            "Events in the store after the projection's position (0 for a built inline projection)",
            ["projection"],
            registry=self.registry,
        )
        self.projection_position = Gauge(
            "donjon_projection_position",
            "Global position the projection has handled up to",
            ["projection"],
            registry=self.registry,
        )
        self.projection_parked = Gauge(
            "donjon_projection_parked_events",
            "Events parked after MaxFailureCount failures",
            ["projection"],
            registry=self.registry,
        )

    def observe_push(self, events: list[StoredEvent]) -> None:
        """Count pushed events (an EventStore push listener)."""
        for event in events:
            self.events_pushed.labels(event.aggregate_type).inc()

    async def render(self, runtime: Runtime) -> bytes:
        """The exposition text; reads the projection states first.

        When the database cannot be read the projection gauges are dropped
        (stale lag would mislead), `donjon_database_up` is 0, and the process's
        own metrics are still served.
        """
        from donjon.core.projections.status import projection_status

        try:
            async with asyncio.timeout(STATUS_TIMEOUT):
                rows = await projection_status(runtime)
        except Exception as exc:
            log.warning("metrics: projection states unreadable: %s", describe(exc))
            self.database_up.set(0)
            for gauge in (self.projection_lag, self.projection_position, self.projection_parked):
                gauge.clear()
        else:
            self.database_up.set(1)
            for row in rows:
                self.projection_lag.labels(row["name"]).set(row["lag"])
                self.projection_position.labels(row["name"]).set(row["position"])
                self.projection_parked.labels(row["name"]).set(row["parked"])
        return generate_latest(self.registry)
