"""The HTTP edge through the ASGI app: hosts to instances, errors, request ids, logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from donjon.core.app import create_app
from donjon.core.http.edge import choose_request_id, request_host
from donjon.core.instance import add_instance, list_instances
from donjon.core.logs import RequestIdFilter, configure_logging
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import make_settings, sqlite_database
from tests.core.test_server_support import MASTERKEY, client_of, plugin_manager

pytestmark = pytest.mark.anyio


async def served_runtime(settings: Settings) -> Runtime:
    """A runtime with the test plugin, its tables created and setup run."""
    runtime = build_runtime(settings, pm=plugin_manager(settings), masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    return runtime


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await served_runtime(settings)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(create_app(runtime, run_projections=False)) as c:
        yield c


@pytest.fixture
async def sqlite_client(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a served runtime on SQLite only, for what does not depend on the store."""
    rt = await served_runtime(make_settings(sqlite_database(tmp_path / "donjon.db")))
    try:
        async with client_of(create_app(rt, run_projections=False)) as c:
            yield c
    finally:
        await rt.close()


async def first_instance_id(runtime: Runtime) -> str:
    async with runtime.db.read() as conn:
        return str((await list_instances(conn))[0]["id"])


# -- instances by host ------------------------------------------------------------------


async def test_each_instance_domain_maps_to_its_own_instance(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    first = await first_instance_id(runtime)
    await runtime.store.push(
        add_instance("second-id", "second", ["second.example"]), creator="test"
    )

    on_localhost = await client.get("/test/instance")
    on_second = await client.get("/test/instance", headers={"host": "second.example"})

    assert on_localhost.status_code == 200 and on_localhost.json() == {"instance_id": first}
    assert on_second.status_code == 200 and on_second.json() == {"instance_id": "second-id"}


async def test_host_port_case_and_ipv6_literals_are_resolved(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    first = await first_instance_id(runtime)
    await runtime.store.push(add_instance("v6-id", "v6", ["[::1]"]), creator="test")

    for host, expected in [
        ("localhost:8080", first),
        ("LocalHost", first),
        ("localhost.", first),
        ("[::1]:8080", "v6-id"),
        ("[::1]", "v6-id"),
    ]:
        response = await client.get("/test/instance", headers={"host": host})
        assert response.status_code == 200, host
        assert response.json() == {"instance_id": expected}, host


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Example.COM:443", "example.com"),
        ("example.com", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("", ""),
        ("::1", "::1"),  # not a valid Host header: kept, matches nothing
        ("[::1", "[::1"),
        ("[::1]junk", "[::1]junk"),
    ],
)
def test_request_host_drops_port_case_and_trailing_dot(header: str, host: str) -> None:
    assert request_host(header) == host


async def test_unknown_host_is_a_json_404_naming_the_host(sqlite_client: httpx.AsyncClient) -> None:
    response = await sqlite_client.get("/test/instance", headers={"host": "nowhere.example:8080"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "instance_not_found"
    assert "'nowhere.example'" in body["message"] and "ExternalDomain" in body["message"]


async def test_debug_paths_need_no_instance(sqlite_client: httpx.AsyncClient) -> None:
    headers = {"host": "nowhere.example"}
    assert (await sqlite_client.get("/debug/healthz", headers=headers)).text == "ok"
    assert (await sqlite_client.get("/debug/ready", headers=headers)).status_code == 200
    assert (await sqlite_client.get("/debug/metrics", headers=headers)).status_code == 200


async def test_a_failing_instance_lookup_is_a_json_503_not_a_500(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(text("DROP TABLE instance_domains"))

    response = await client.get("/test/instance", headers={"host": "not-cached.example"})

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert response.headers["x-request-id"] in response.json()["message"]


async def raw_get(app: Any, path: str, host: str) -> tuple[int, dict[str, Any]]:
    """GET `path` exactly as given (no client-side normalisation); (status, JSON body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], json.loads(body)


async def test_dot_segments_under_debug_do_not_skip_instance_resolution(tmp_path: Any) -> None:
    rt = await served_runtime(make_settings(sqlite_database(tmp_path / "donjon.db")))
    app = create_app(rt, run_projections=False)
    try:
        async with client_of(app):
            for path in ("/debug/../test/instance", "/debug/%2e%2e/test/instance"):
                status, body = await raw_get(app, path, "nowhere.example")
                assert status == 404 and "instance_id" not in body, path
    finally:
        await rt.close()


# -- errors ---------------------------------------------------------------------------


async def test_bad_input_gets_a_json_4xx_with_a_clear_message(
    sqlite_client: httpx.AsyncClient,
) -> None:
    bad_query = await sqlite_client.get("/test/items/3", params={"limit": "many"})
    bad_path = await sqlite_client.get("/test/items/three")
    no_route = await sqlite_client.get("/no/such/route")
    wrong_method = await sqlite_client.delete("/test/instance")
    bad_json = await sqlite_client.post(
        "/test/greetings", content=b"{not json", headers={"content-type": "application/json"}
    )
    wrong_shape = await sqlite_client.post("/test/greetings", json={"name": "x", "times": "twice"})
    taken = await sqlite_client.get("/test/taken")
    too_deep = await sqlite_client.post(
        "/test/greetings", content=b"[" * 100_000, headers={"content-type": "application/json"}
    )

    assert bad_query.status_code == 400
    assert bad_query.json()["error"] == "bad_request"
    assert "limit" in json.dumps(bad_query.json()["details"])
    assert bad_path.status_code == 404 and bad_path.json()["error"] == "not_found"
    assert no_route.status_code == 404 and no_route.json()["error"] == "not_found"
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert bad_json.status_code == 400 and bad_json.json()["message"]
    assert wrong_shape.status_code == 400 and "times" in json.dumps(wrong_shape.json())
    assert taken.status_code == 409 and taken.json() == {
        "error": "conflict",
        "message": "Errors.Test.AlreadyExists",
    }
    assert too_deep.status_code == 400
    assert too_deep.json()["message"] == "the request body is nested too deeply"
    good = await sqlite_client.post("/test/greetings", json={"name": "x", "times": 2})
    assert good.status_code == 201 and good.json() == {"greeting": "hello xhello x"}


async def test_an_unhandled_error_is_a_json_500_logged_with_the_request_id(
    sqlite_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())

    with caplog.at_level(logging.INFO):
        response = await sqlite_client.get("/test/boom", headers={"x-request-id": "boom-1"})

    assert response.status_code == 500
    assert response.json() == {"error": "internal", "message": "internal error (request id boom-1)"}
    assert "kaboom" not in response.text
    [failure] = [r for r in caplog.records if r.exc_info]
    assert failure.request_id == "boom-1"  # type: ignore[attr-defined]
    assert "kaboom" in str(failure.exc_info[1])  # type: ignore[index]
    assert "/test/boom" in failure.getMessage()


# -- request ids and logs -------------------------------------------------------------------


async def test_request_id_is_echoed_when_given_and_generated_otherwise(
    sqlite_client: httpx.AsyncClient,
) -> None:
    given = await sqlite_client.get("/debug/healthz", headers={"x-request-id": "req-42"})
    generated = [await sqlite_client.get("/debug/healthz") for _ in range(2)]
    implausible = await sqlite_client.get("/debug/healthz", headers={"x-request-id": "x" * 200})

    assert given.headers["x-request-id"] == "req-42"
    ids = [r.headers["x-request-id"] for r in generated]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids) and ids[0] != ids[1]
    assert implausible.headers["x-request-id"] != "x" * 200


def test_only_plausible_request_ids_are_taken_from_the_client() -> None:
    assert (
        choose_request_id("4bf92f3577b34da6a3ce929d0e0e4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert (
        choose_request_id("Root=1-67891233-abcdef;Sampled=1") == "Root=1-67891233-abcdef;Sampled=1"
    )
    for bad in ("", "has space", "new\nline", "é", "x" * 129, None):
        assert choose_request_id(bad) != bad


async def test_log_records_written_while_serving_carry_the_request_id(
    sqlite_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())

    with caplog.at_level(logging.INFO):
        await sqlite_client.get("/test/log", headers={"x-request-id": "log-7"})
        logging.getLogger("tests.server").info("outside any request")

    inside = next(r for r in caplog.records if r.getMessage() == "inside the test route")
    access = next(r for r in caplog.records if r.name == "donjon.http")
    outside = next(r for r in caplog.records if r.getMessage() == "outside any request")
    assert inside.request_id == "log-7"  # type: ignore[attr-defined]
    assert access.request_id == "log-7"  # type: ignore[attr-defined]
    assert access.getMessage().startswith("GET /test/log 200 ")
    assert access.path == "/test/log"  # type: ignore[attr-defined]
    assert access.route == "/test/log" and access.status == 200  # type: ignore[attr-defined]
    assert outside.request_id is None  # type: ignore[attr-defined]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


async def test_json_log_format_writes_one_object_per_line_with_the_request_id(
    sqlite_client: httpx.AsyncClient, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)

    await sqlite_client.get("/test/log", headers={"x-request-id": "json-1"})
    await sqlite_client.get("/test/boom", headers={"x-request-id": "json-2"})
    await sqlite_client.get("/no/such%0Aforged line", params={"code": "secret"})

    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert entries, "nothing was logged"
    assert all({"time", "level", "logger", "msg"} <= set(e) for e in entries)
    inside = next(e for e in entries if e["msg"] == "inside the test route")
    access = next(
        e for e in entries if e["logger"] == "donjon.http" and e["request_id"] == "json-1"
    )
    failure = next(e for e in entries if "error" in e)
    assert inside["request_id"] == "json-1" and inside["level"] == "info"
    assert access["status"] == 200 and access["path"] == "/test/log" and access["duration_ms"] >= 0
    assert failure["request_id"] == "json-2" and "RuntimeError: kaboom" in failure["error"]
    forged = next(e for e in entries if e.get("status") == 404)
    assert forged["path"] == "/no/such%0Aforged%20line"  # as sent; no query string
    assert not [e for e in entries if e["logger"].startswith("donjon") and "secret" in str(e)]


async def test_a_write_on_an_outdated_process_gets_503_to_retry_elsewhere(
    sqlite_client: httpx.AsyncClient,
) -> None:
    response = await sqlite_client.get("/test/outdated")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "outdated" in response.json()["message"] and "version 2" in response.json()["message"]
