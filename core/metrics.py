"""Prometheus metrics of one process: requests, latencies, pushed events, projection lag."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from donjon.core.events import StoredEvent

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "donjon_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "donjon_http_request_duration_seconds",
            "Time from request start to the end of the response",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.events_pushed = Counter(
            "donjon_events_pushed", "Events pushed by this process", ["aggregate_type"], registry=self.registry
        )
        self.projection_lag = Gauge(
            "donjon_projection_lag_events",
            "Events in the store the projection has not handled yet",
            ["projection"],
            registry=self.registry,
        )
        self.projection_position = Gauge(
            "donjon_projection_position", "Last position handled", ["projection"], registry=self.registry
        )
        self.projection_parked = Gauge(
            "donjon_projection_parked_events", "Events parked after MaxFailureCount", ["projection"],
            registry=self.registry,
        )

    def observe_push(self, events: list[StoredEvent]) -> None:
        for event in events:
            self.events_pushed.labels(event.aggregate_type).inc()

    async def render(self, runtime: Runtime) -> bytes:
        from donjon.core.projections.status import projection_status

        for row in await projection_status(runtime):
            self.projection_lag.labels(row["name"]).set(row["lag"])
            self.projection_position.labels(row["name"]).set(row["position"])
            self.projection_parked.labels(row["name"]).set(row["parked"])
        return generate_latest(self.registry)
