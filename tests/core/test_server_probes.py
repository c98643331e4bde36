"""/debug/ready and /debug/metrics through the ASGI app."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from donjon.core.app import create_app
from donjon.core.instance import add_instance
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import make_settings, postgres_database, sqlite_database
from tests.core.test_server_support import MASTERKEY, InstancesSeen, client_of, plugin_manager

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime with the test plugin, on an empty store (no tables, no setup)."""
    rt = build_runtime(settings, pm=plugin_manager(settings), masterkey=MASTERKEY)
    try:
        yield rt
    finally:
        await rt.close()


async def set_up(runtime: Runtime) -> None:
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()


def samples(exposition: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition (parsing fails on invalid text)."""
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` whose labels include `labels`, or None."""
    found = [
        s.value
        for s in samples(exposition)
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, f"{name}{labels} is ambiguous: {found}"
    return found[0] if found else None


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- /debug/ready --------------------------------------------------------------------------


async def test_ready_is_412_with_the_reasons_until_setup_is_complete(runtime: Runtime) -> None:
    async with client_of(create_app(runtime, run_projections=False)) as client:
        no_tables = await client.get("/debug/ready")
        await create_tables(runtime.db)
        no_setup = await client.get("/debug/ready")
        await SetupRunner(runtime).run()
        ready = await client.get("/debug/ready")
        still_ready = await client.get("/debug/ready")

    assert no_tables.status_code == 412
    assert no_tables.json()["status"] == "not ready"
    assert "setup state unreadable" in no_tables.json()["problems"][0]
    assert no_setup.status_code == 412
    assert "setup step not done: first_instance (run `donjon setup`)" in no_setup.json()["problems"]
    assert (
        "setup step not done: projection.servertest_instances_seen (run `donjon setup`)"
        in (no_setup.json()["problems"])
    )
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    assert still_ready.status_code == 200
    assert ready.headers["cache-control"] == "no-store"


async def test_ready_is_412_and_health_200_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = make_settings(
        postgres_database(f"postgresql://donjon@127.0.0.1:{closed_port()}/donjon")
    )
    rt = build_runtime(settings, masterkey=MASTERKEY)
    try:
        async with client_of(create_app(rt, run_projections=False)) as client:
            ready = await client.get("/debug/ready")
            health = await client.get("/debug/healthz")
            metrics = await client.get("/debug/metrics")
            routed = await client.get("/anything")
    finally:
        await rt.close()

    assert ready.status_code == 412
    [problem] = ready.json()["problems"]
    assert problem.startswith("database unreachable: ")
    assert health.status_code == 200
    assert metrics.status_code == 200 and value(metrics.text, "donjon_database_up") == 0
    assert routed.status_code == 503 and routed.json()["error"] == "unavailable"


async def test_ready_turns_412_when_the_database_goes_away_after_setup(runtime: Runtime) -> None:
    await set_up(runtime)
    async with client_of(create_app(runtime, run_projections=False)) as client:
        before = await client.get("/debug/ready")
        real_ping = runtime.db.ping

        async def refused() -> None:
            raise ConnectionRefusedError("connection refused")

        runtime.db.ping = refused  # type: ignore[method-assign]
        during = await client.get("/debug/ready")
        runtime.db.ping = real_ping  # type: ignore[method-assign]
        after = await client.get("/debug/ready")

    assert before.status_code == 200
    assert during.status_code == 412
    assert during.json()["problems"] == [
        "database unreachable: ConnectionRefusedError: connection refused"
    ]
    assert after.status_code == 200


# -- /debug/metrics -------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_and_status_with_a_latency_histogram(
    runtime: Runtime,
) -> None:
    await set_up(runtime)
    async with client_of(create_app(runtime, run_projections=False)) as client:
        for _ in range(3):
            await client.get("/test/instance")
        await client.get("/test/items/7")
        await client.get("/test/items/7", params={"limit": "x"})
        await client.get("/test/instance", headers={"host": "nowhere.example"})
        await client.request("BREW", "/test/instance")
        response = await client.get("/debug/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    requests = "donjon_http_requests_total"
    assert value(text, requests, method="GET", route="/test/instance", status="200") == 3
    # Labels are route templates, never raw paths.
    assert value(text, requests, method="GET", route="/test/items/{item_id}", status="200") == 1
    assert value(text, requests, method="GET", route="/test/items/{item_id}", status="400") == 1
    assert value(text, requests, method="GET", route="unmatched", status="404") == 1
    assert value(text, requests, method="OTHER", route="unmatched", status="405") == 1
    assert not [s for s in samples(text) if "/test/items/7" in s.labels.get("route", "")]
    latency = "donjon_http_request_duration_seconds"
    assert value(text, f"{latency}_count", method="GET", route="/test/instance") == 3
    assert value(text, f"{latency}_bucket", method="GET", route="/test/instance", le="+Inf") == 3
    assert value(text, f"{latency}_sum", method="GET", route="/test/instance") > 0  # type: ignore[operator]
    assert value(text, "process_resident_memory_bytes") is not None


async def test_metrics_count_events_pushed_by_aggregate_type(runtime: Runtime) -> None:
    await set_up(runtime)
    async with client_of(create_app(runtime, run_projections=False)) as client:
        before = value(
            (await client.get("/debug/metrics")).text,
            "donjon_events_pushed_total",
            aggregate_type="instance",
        )
        await runtime.store.push(
            add_instance("second-id", "second", ["second.example"]), creator="test"
        )
        after = value(
            (await client.get("/debug/metrics")).text,
            "donjon_events_pushed_total",
            aggregate_type="instance",
        )

    # Setup created the first instance in this process (added, domain added,
    # primary set, its administrators' memberships); the push added three more.
    from donjon.core.eventstore.query import EventQuery

    setup_events = await runtime.store.query(EventQuery(aggregate_types=("instance",)))
    assert before == len(setup_events) - 3
    assert after == before + 3


async def test_metrics_report_the_lag_of_each_projection(runtime: Runtime) -> None:
    await set_up(runtime)
    lag = "donjon_projection_lag_events"
    seen = runtime.projection(InstancesSeen.name)
    # Setup recorded its last steps after building the projection: catch up first.
    await runtime.runner.catch_up(seen)
    async with client_of(create_app(runtime, run_projections=False)) as client:
        settled = (await client.get("/debug/metrics")).text
        await runtime.store.push(
            add_instance("second-id", "second", ["second.example"]), creator="test"
        )
        behind = (await client.get("/debug/metrics")).text
        await runtime.runner.catch_up(seen)
        caught_up = (await client.get("/debug/metrics")).text

    assert value(settled, lag, projection=InstancesSeen.name) == 0
    assert value(behind, lag, projection=InstancesSeen.name) == 3
    assert value(behind, lag, projection="instances") == 0  # inline: written with the push
    assert value(caught_up, lag, projection=InstancesSeen.name) == 0
    head = await runtime.store.max_position()
    assert value(caught_up, "donjon_projection_position", projection=InstancesSeen.name) == head
    assert value(caught_up, "donjon_projection_parked_events", projection=InstancesSeen.name) == 0
    assert value(caught_up, "donjon_database_up") == 1


async def test_the_running_app_keeps_async_projections_caught_up(runtime: Runtime) -> None:
    await set_up(runtime)
    async with client_of(create_app(runtime)) as client:
        await runtime.store.push(
            add_instance("second-id", "second", ["second.example"]), creator="test"
        )
        lag: float | None = None
        for _ in range(100):
            text = (await client.get("/debug/metrics")).text
            lag = value(text, "donjon_projection_lag_events", projection=InstancesSeen.name)
            if lag == 0:
                break
            await asyncio.sleep(0.05)

    assert lag == 0


async def test_metrics_disabled_serves_no_metrics_route(tmp_path: Path) -> None:
    settings = make_settings(sqlite_database(tmp_path / "donjon.db"), Metrics={"Enabled": False})
    rt = build_runtime(settings, masterkey=MASTERKEY)
    await set_up(rt)
    try:
        async with client_of(create_app(rt, run_projections=False)) as client:
            metrics = await client.get("/debug/metrics")
            ready = await client.get("/debug/ready")
    finally:
        await rt.close()

    assert metrics.status_code == 404
    assert ready.status_code == 200


def test_metric_names_in_docs_are_the_served_ones() -> None:
    """docs/operations.md lists every donjon_* metric the process serves."""
    from donjon.core.metrics import Metrics

    served = {
        family.name
        for family in text_string_to_metric_families(_render_without_database(Metrics()))
        if family.name.startswith("donjon_") and not family.name.endswith("_created")
    }
    docs = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    missing = [name for name in sorted(served) if name not in docs]
    assert not missing, f"docs/operations.md does not mention {missing}"


def _render_without_database(metrics: Any) -> str:
    from prometheus_client import generate_latest

    metrics.requests.labels("GET", "/x", "200").inc()
    metrics.latency.labels("GET", "/x").observe(0.1)
    metrics.events_pushed.labels("instance").inc()
    metrics.projection_lag.labels("p").set(0)
    metrics.projection_position.labels("p").set(0)
    metrics.projection_parked.labels("p").set(0)
    metrics.database_up.set(1)
    return generate_latest(metrics.registry).decode()
