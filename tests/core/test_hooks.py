"""One test per hook of donjon.core.hookspecs, named `test_hook_<hook>`.

Each registers a small plugin defined here next to the built-in ones and
checks the hook's effect through the real core: the event store, setup, the
HTTP app, the command line. Several implementations are `async def`, because
any hook may return an awaitable. tests/core/test_docs.py fails when a hook
has no test here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from litestar import get
from litestar.di import NamedDependency
from sqlalchemy import Column, Table, Text, select

from donjon.core import cli as donjon_cli
from donjon.core import hookimpl, ids
from donjon.core.api.auth import Principal
from donjon.core.api.connect import Call, ConnectError, Message, Service, invalid
from donjon.core.app import create_app
from donjon.core.errors import ConfigError, PluginError, UnknownEventTypeError
from donjon.core.events import Aggregate, AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.query import EventQuery
from donjon.core.identity import members, secrets, session_checks, users
from donjon.core.identity.orgs import orgs_table
from donjon.core.identity.session_checks import CheckContext, CheckOutcome, SessionCheck
from donjon.core.identity.sessions import SessionTOTPChecked, format_time
from donjon.core.identity.users import users_table
from donjon.core.plugins import (
    DonjonPluginManager,
    PluginInfo,
    SettingsSection,
    apply_enabled,
    get_plugin_manager,
)
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Put, Statement
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings
from donjon.core.setup.migrations import Migration, StepContext
from donjon.core.setup.runner import SetupRunner
from tests.conftest import make_settings, sqlite_database
from tests.core.plugins_support import client_of, eventually, first_instance, set_up

pytestmark = pytest.mark.anyio


# -- what the test plugins share ---------------------------------------------------------


@dataclass(frozen=True)
class Pinged(Event):
    TYPE = "hooktest.pinged"
    AGGREGATE_TYPE = "hooktest.pinger"
    note: str


def ping(instance_id: str, note: str, pinger: str = "p1") -> AggregateChanges:
    return AggregateChanges(
        Aggregate("hooktest.pinger", pinger, instance_id, instance_id), [Pinged(note)]
    )


class PingEvents:
    """Registers Pinged, asynchronously (a register_* hook may return an awaitable)."""

    @hookimpl
    async def register_event_types(self) -> list[type[Event]]:
        await asyncio.sleep(0)
        return [Pinged]


@get("/hooktest/whoami")
async def whoami(
    runtime: NamedDependency[Runtime], instance_id: NamedDependency[str]
) -> dict[str, Any]:
    return {"instance_id": instance_id, "domain": runtime.settings.ExternalDomain}


class WhoAmI:
    @hookimpl
    def register_routes(self, settings: Settings) -> list[Any]:
        assert isinstance(settings, Settings)
        return [whoami]


def manager(settings: Settings, **plugins: object) -> DonjonPluginManager:
    """The built-in and installed plugins, plus `plugins` (by name); then Enabled applied."""
    pm = get_plugin_manager()
    for name, plugin in plugins.items():
        pm.add_plugin(plugin, PluginInfo(name, "1.0", "test", essential=False, enabled=True))
    apply_enabled(pm, settings)
    return pm


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite settings: every hook behaves the same on PostgreSQL, the store is not under test."""
    return make_settings(sqlite_database(tmp_path / "donjon.db"))


# -- registration hooks ------------------------------------------------------------------


async def test_hook_register_event_types(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, pings=PingEvents()))
    without = build_runtime(settings, pm=manager(settings))
    try:
        instance_id = await first_instance(runtime)
        [stored] = await runtime.store.push(ping(instance_id, "hi"), creator="test")
        [read] = await runtime.store.query(EventQuery(event_types=(Pinged.TYPE,)))

        assert runtime.registry.decode(read) == Pinged("hi")
        assert read.position == stored.position
        with pytest.raises(UnknownEventTypeError, match="'hooktest.pinged' is not registered"):
            await without.store.push(ping(instance_id, "hi"), creator="test")
    finally:
        await runtime.close()
        await without.close()


@dataclass
class PingerSettings:
    Every: timedelta = timedelta(seconds=30)
    Target: str = ""


class PingerConfig:
    @hookimpl
    def register_settings(self) -> list[SettingsSection]:
        return [SettingsSection("pinger", PingerSettings)]


async def test_hook_register_settings(tmp_path: Path) -> None:
    database = sqlite_database(tmp_path / "donjon.db")
    configured = make_settings(database, Plugins={"pinger": {"Every": "5s", "Enabled": True}})
    defaults = make_settings(database)
    wrong = make_settings(database, Plugins={"pinger": {"Evry": "5s"}})

    runtimes = [
        build_runtime(s, pm=manager(s, pinger=PingerConfig())) for s in (configured, defaults)
    ]
    try:
        assert runtimes[0].plugin_settings["pinger"] == PingerSettings(Every=timedelta(seconds=5))
        assert runtimes[1].plugin_settings["pinger"] == PingerSettings()
        with pytest.raises(
            ConfigError, match=r"^Plugins\.pinger\.Evry: unknown key .*known here: Every, Target"
        ):
            build_runtime(wrong, pm=manager(wrong, pinger=PingerConfig()))
    finally:
        for runtime in runtimes:
            await runtime.close()


pings_table = Table(
    "hooktest_pings",
    projection_metadata,
    Column("id", Text, primary_key=True),
    Column("note", Text, nullable=False),
)


class PingsProjection(Projection):
    name = "hooktest_pings"
    version = 1
    inline = True
    tables = (pings_table,)

    @handles(Pinged.TYPE)
    def pinged(self, e: StoredEvent) -> list[Statement]:
        return [
            Put(pings_table, {"id": f"{e.aggregate_id}/{e.sequence}", "note": e.payload["note"]})
        ]


class PingsReadModel(PingEvents):
    @hookimpl
    def register_projections(self, settings: Settings) -> list[Projection]:
        return [PingsProjection()]


async def test_hook_register_projections(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, pings=PingsReadModel()))
    try:
        await runtime.store.push(ping(await first_instance(runtime), "one"), creator="test")

        # Inline: written by the push itself, no runner involved.
        async with runtime.db.read() as conn:
            rows = (await conn.execute(select(pings_table.c.id, pings_table.c.note))).all()
        assert [tuple(r) for r in rows] == [("p1/1", "one")]
        assert runtime.projection("hooktest_pings").inline
    finally:
        await runtime.close()


class SeedStep:
    def __init__(self) -> None:
        self.runs = 0

    async def seed(self, ctx: StepContext) -> dict[str, Any]:
        self.runs += 1
        return {"seeded": ctx.runtime.settings.ExternalDomain}

    @hookimpl
    def register_migrations(self, settings: Settings) -> list[Migration]:
        return [Migration("hooktest.seed", self.seed, description="seed the test data")]


async def test_hook_register_migrations(settings: Settings) -> None:
    step = SeedStep()
    runtime = await set_up(settings, manager(settings, seed=step))
    try:
        await SetupRunner(runtime).run()  # a second setup: the step is done, not run again

        assert step.runs == 1
        assert runtime.migrations()[-1].name == "hooktest.seed"  # after the core's steps
        done = await runtime.store.query(EventQuery(event_types=("system.migration.done",)))
        [payload] = [e.payload for e in done if e.payload["name"] == "hooktest.seed"]
        assert payload["info"] == {"seeded": "localhost"}
    finally:
        await runtime.close()


async def test_hook_register_routes(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, whoami=WhoAmI()))
    instance_id = await first_instance(runtime)

    async with client_of(create_app(runtime, run_projections=False)) as client:
        response = await client.get("/hooktest/whoami")

    assert response.status_code == 200
    assert response.json() == {"instance_id": instance_id, "domain": "localhost"}


echo = Service("hooktest.echo.v1.EchoService")


class EchoRequest(Message):
    text: str = ""
    times: int = 1


@echo.rpc("Echo", request=EchoRequest)
async def echo_text(call: Call, req: EchoRequest) -> dict[str, Any]:
    """Say the text again, `times` times."""
    if req.times < 1:
        raise invalid("times", "must be at least 1")
    return {"text": req.text * req.times, "userId": call.user_id, "instanceId": call.instance_id}


class Echo:
    @hookimpl
    async def register_api_services(self, settings: Settings) -> list[Service]:
        assert isinstance(settings, Settings)
        return [echo]


async def machine_token(runtime: Runtime, instance_id: str, roles: list[str]) -> tuple[str, str]:
    """(user id, personal access token) of a new service account of the first org,
    with `roles` on the instance."""
    async with runtime.db.read() as conn:
        org_id = (await conn.execute(select(orgs_table.c.id).limit(1))).scalar_one()
    user_id, token = ids.new_id(), secrets.new_secret()
    changes = [
        users.new_user(
            instance_id,
            user_id,
            org_id,
            [
                users.MachineAdded(username=f"sa-{user_id}", name="sa"),
                users.PersonalAccessTokenAdded(
                    token_id=ids.new_id(), digest=secrets.digest(token), expiration=""
                ),
            ],
            f"sa-{user_id}",
        )
    ]
    if roles:
        changes.append(
            members.add_member(
                members.INSTANCE, instance_id, instance_id, instance_id, user_id, roles
            )
        )
    await runtime.store.push(changes, creator="test")
    return user_id, token


async def test_hook_register_api_services(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, echo=Echo()))
    instance_id = await first_instance(runtime)
    user_id, token = await machine_token(runtime, instance_id, [])
    bearer = {"authorization": f"Bearer {token}"}
    path = "/hooktest.echo.v1.EchoService/Echo"

    async with client_of(create_app(runtime, run_projections=False)) as client:
        echoed = await client.post(path, json={"text": "hi", "times": 2}, headers=bearer)
        mistyped = await client.post(path, json={"times": "twice"}, headers=bearer)
        refused = await client.post(path, json={"text": "hi", "times": 0}, headers=bearer)
        anonymous = await client.post(path, json={"text": "hi"})
        openapi = (await client.get("/openapi/management.json")).json()

    assert echoed.status_code == 200
    assert echoed.json() == {"text": "hihi", "userId": user_id, "instanceId": instance_id}
    assert mistyped.status_code == 400 and mistyped.json()["code"] == "invalid_argument"
    assert mistyped.json()["message"].startswith("times: ")
    assert refused.json() == {"code": "invalid_argument", "message": "times: must be at least 1"}
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    assert openapi["paths"][path]["post"]["summary"] == "Say the text again, `times` times."

    twice = build_runtime(settings, pm=manager(settings, echo=Echo(), again=Echo()))
    try:
        with pytest.raises(PluginError, match="EchoService/Echo is served twice"):
            create_app(twice, run_projections=False)
    finally:
        await twice.close()


class OneTimeCodes:
    """A `totp` check accepting 123456, and an `otpSms` challenge answering a code."""

    @hookimpl
    def register_session_checks(self, settings: Settings) -> list[SessionCheck]:
        assert isinstance(settings, Settings)

        async def totp(ctx: CheckContext, value: dict[str, Any]) -> CheckOutcome:
            if not ctx.user_id:
                raise ConnectError("failed_precondition", f"{ctx.path}: check the user first")
            if value.get("code") != "123456":
                raise invalid(f"{ctx.path}.code", "the code is invalid")
            return CheckOutcome([SessionTOTPChecked(checked_at=format_time(ctx.now))])

        async def otp_sms(ctx: CheckContext, value: dict[str, Any]) -> CheckOutcome:
            return CheckOutcome([], challenge="654321" if "returnCode" in value else None)

        return [SessionCheck("totp", totp), SessionCheck("otpSms", otp_sms, challenge=True)]


async def test_hook_register_session_checks(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, codes=OneTimeCodes()))
    instance_id = await first_instance(runtime)
    _, token = await machine_token(runtime, instance_id, ["IAM_LOGIN_CLIENT"])
    async with runtime.db.read() as conn:
        org_id = (await conn.execute(select(orgs_table.c.id).limit(1))).scalar_one()
    person = ids.new_id()
    await runtime.store.push(
        users.new_user(
            instance_id,
            person,
            org_id,
            [
                users.HumanAdded(
                    username="ada", first_name="Ada", last_name="L", email_verified=True
                )
            ],
            "ada",
        ),
        creator="test",
    )
    bearer = {"authorization": f"Bearer {token}"}
    service = "/zitadel.session.v2.SessionService"

    async with client_of(create_app(runtime, run_projections=False)) as client:

        async def create(body: dict[str, Any]) -> Any:
            return await client.post(f"{service}/CreateSession", json=body, headers=bearer)

        checked = await create(
            {
                "checks": {"user": {"userId": person}, "totp": {"code": "123456"}},
                "challenges": {"otpSms": {"returnCode": {}}},
            }
        )
        wrong = await create({"checks": {"user": {"userId": person}, "totp": {"code": "1"}}})
        unhandled = await create({"checks": {"user": {"userId": person}, "otpEmail": {}}})
        session = await client.post(
            f"{service}/GetSession",
            json={"sessionId": checked.json()["sessionId"]},
            headers=bearer,
        )
        # The TOTP factor authenticates the session's user.
        as_ada = {"authorization": f"Bearer {checked.json()['sessionToken']}"}
        me = await client.post(
            "/zitadel.user.v2.UserService/GetUserByID", json={"userId": person}, headers=as_ada
        )

    assert checked.status_code == 200, checked.json()
    assert checked.json()["challenges"] == {"otpSms": "654321"}
    assert set(session.json()["session"]["factors"]) == {"user", "totp"}
    assert me.status_code == 200
    assert wrong.json() == {
        "code": "invalid_argument",
        "message": "checks.totp.code: the code is invalid",
    }
    assert unhandled.status_code == 501
    assert unhandled.json()["message"].startswith("checks.otpEmail: ")
    sessions = await runtime.store.query(EventQuery(aggregate_types=("session",)))
    assert {e.aggregate_id for e in sessions} == {checked.json()["sessionId"]}
    await runtime.close()

    twice = build_runtime(settings, pm=manager(settings, a=OneTimeCodes(), b=OneTimeCodes()))
    try:
        with pytest.raises(PluginError, match="checks.totp is already handled by plugin"):
            session_checks.registry(twice)
    finally:
        await twice.close()


@click.command("hooktest-hello")
@click.argument("name")
@donjon_cli.config_option
def hello(name: str, configs: tuple[str, ...]) -> None:
    """Say hello."""
    click.echo(f"hello {name}")


class Hello:
    @hookimpl
    async def register_commands(self) -> list[click.Command]:
        return [hello]


def test_hook_register_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    def pm_with_hello(settings: Settings | None = None) -> DonjonPluginManager:
        pm = get_plugin_manager()
        pm.add_plugin(Hello(), PluginInfo("hello", "1.0", "test", essential=False, enabled=True))
        if settings is not None:
            apply_enabled(pm, settings)
        return pm

    monkeypatch.setattr(donjon_cli, "get_plugin_manager", pm_with_hello)
    group = donjon_cli.DonjonCLI(name="donjon")
    runner = CliRunner()

    # Called before the arguments are parsed, outside any event loop: the
    # awaitable Hello returns is run to completion by the host.
    listed = runner.invoke(group, ["--help"], env={})
    ran = runner.invoke(group, ["hooktest-hello", "Ada"], env={})
    refused = runner.invoke(
        group, ["hooktest-hello", "Ada"], env={"DONJON_PLUGINS_HELLO_ENABLED": "false"}
    )

    assert "hooktest-hello  Say hello." in listed.output
    assert (ran.exit_code, ran.output) == (0, "hello Ada\n")
    assert refused.exit_code == 1
    assert "the hello plugin is disabled (Plugins.hello.Enabled is false)" in refused.output


# -- lifecycle hooks ---------------------------------------------------------------------


class SlowStart:
    def __init__(self) -> None:
        self.started: list[Runtime] = []

    @hookimpl
    async def on_startup(self, runtime: Runtime) -> None:
        await asyncio.sleep(0.05)
        self.started.append(runtime)

    @hookimpl
    def register_routes(self) -> list[Any]:
        @get("/hooktest/started", sync_to_thread=False)
        def started() -> dict[str, int]:
            return {"started": len(self.started)}

        return [started]


class FailingStart:
    @hookimpl
    def on_startup(self) -> None:
        raise RuntimeError("no licence")


async def test_hook_on_startup(settings: Settings) -> None:
    slow = SlowStart()
    runtime = await set_up(settings, manager(settings, slow=slow))
    failing = build_runtime(settings, pm=manager(settings, failing=FailingStart()))

    async with client_of(create_app(runtime, run_projections=False)) as client:
        # The awaitable finished before the first request was served.
        assert (await client.get("/hooktest/started")).json() == {"started": 1}
    assert slow.started == [runtime]
    try:
        with pytest.raises(Exception) as failure:  # which kind: see below
            async with client_of(create_app(failing, run_projections=False)):
                pass
    finally:
        await failing.close()
    # The start fails with the hook's error (the test client may wrap it in a group).
    assert (failure.errisinstance(RuntimeError) and "no licence" in str(failure.value)) or (
        failure.group_contains(RuntimeError, match="no licence")
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    async def on_shutdown(self, runtime: Runtime) -> None:
        await asyncio.sleep(0)
        self.seen.append(runtime)


class FailingStop:
    @hookimpl
    def on_shutdown(self) -> None:
        raise RuntimeError("cannot say goodbye")


async def test_hook_on_shutdown(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    # Registered last, the failing one is called first: the recorder must still run.
    runtime = await set_up(settings, manager(settings, recorder=recorder, failing=FailingStop()))

    async with client_of(create_app(runtime, run_projections=False)):
        assert recorder.seen == []

    assert recorder.seen == [runtime]
    assert "plugin failing: on_shutdown failed" in caplog.text
    assert "cannot say goodbye" in caplog.text


class PushWatcher(PingEvents):
    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    @hookimpl
    async def on_events_pushed(self, events: list[StoredEvent]) -> None:
        await asyncio.sleep(0)
        self.seen.append([e.position for e in events if e.type == Pinged.TYPE])


class FailingWatcher:
    @hookimpl
    def on_events_pushed(self) -> None:
        raise RuntimeError("watcher down")


async def test_hook_on_events_pushed(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    watcher = PushWatcher()
    runtime = await set_up(settings, manager(settings, watcher=watcher, failing=FailingWatcher()))
    try:
        instance_id = await first_instance(runtime)
        changes = AggregateChanges(
            Aggregate("hooktest.pinger", "p1", instance_id, instance_id), [Pinged("a"), Pinged("b")]
        )
        with caplog.at_level(logging.ERROR):
            stored = await runtime.store.push(
                changes, creator="test"
            )  # the failing watcher does not fail it

        assert await eventually(lambda: [e.position for e in stored] in watcher.seen)
        assert "plugin failing: on_events_pushed failed" in caplog.text
    finally:
        await runtime.close()


class PingPong(PingEvents):
    """Answers each ping with a pong pushed from inside on_event; fails once on "flaky"."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.flaky_failures = 1

    @hookimpl
    async def on_event(self, event: StoredEvent, runtime: Runtime) -> None:
        if event.type != Pinged.TYPE or event.payload["note"].startswith("pong"):
            return
        if event.payload["note"] == "flaky" and self.flaky_failures:
            self.flaky_failures -= 1
            raise RuntimeError("not now")
        self.seen.append((event.position, event.payload["note"]))
        await runtime.store.push(
            ping(event.instance_id, f"pong {event.payload['note']}", pinger="p2"), creator="echo"
        )


async def test_hook_on_event(settings: Settings) -> None:
    settings.Projections.RetryFailedAfter = timedelta(milliseconds=50)
    echo = PingPong()
    runtime = await set_up(settings, manager(settings, echo=echo))
    try:
        instance_id = await first_instance(runtime)
        # The served app runs the event hook runner: pushes wake it, a failure is retried.
        async with client_of(create_app(runtime)):
            stored = await runtime.store.push(
                [ping(instance_id, "a"), ping(instance_id, "flaky"), ping(instance_id, "b")],
                creator="test",
            )
            assert await eventually(lambda: len(echo.seen) == 3)
        assert echo.seen == [(e.position, e.payload["note"]) for e in stored]
        pongs = await runtime.store.query(EventQuery(event_types=(Pinged.TYPE,)))
        assert [e.payload["note"] for e in pongs][3:] == ["pong a", "pong flaky", "pong b"]
    finally:
        await runtime.close()


# -- customisation hooks -----------------------------------------------------------------


class ShoutingEcho(Echo):
    """Echo, with requests rewritten (and refused) and responses rewritten by two plugins."""

    @hookimpl
    async def customize_api_request(self, method: str, request: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        if method != "/hooktest.echo.v1.EchoService/Echo":
            return None
        if str(request.get("text", "")).startswith("forbidden"):
            raise invalid("text", "this text is refused")
        return {**request, "text": str(request.get("text", "")).upper()}


class Exclaiming:
    @hookimpl
    def customize_api_request(self, request: dict[str, Any]) -> dict[str, Any]:
        return {**request, "text": f"{request.get('text', '')}!"}


async def test_hook_customize_api_request(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, echo=ShoutingEcho(), bang=Exclaiming()))
    instance_id = await first_instance(runtime)
    _, token = await machine_token(runtime, instance_id, [])
    bearer = {"authorization": f"Bearer {token}"}
    path = "/hooktest.echo.v1.EchoService/Echo"
    async with client_of(create_app(runtime, run_projections=False)) as client:
        rewritten = await client.post(path, json={"text": "hi", "times": 2}, headers=bearer)
        refused = await client.post(path, json={"text": "forbidden"}, headers=bearer)
        still_checked = await client.post(path, json={"times": "x"}, headers=bearer)
    # The most recently registered implementation runs first: "hi!" shouted twice.
    assert rewritten.json()["text"] == "HI!HI!"
    assert refused.status_code == 400
    assert refused.json() == {"code": "invalid_argument", "message": "text: this text is refused"}
    assert still_checked.json()["code"] == "invalid_argument"
    await runtime.close()


class Signing:
    @hookimpl
    def customize_api_response(
        self, method: str, request: dict[str, Any], response: dict[str, Any], call: Call
    ) -> dict[str, Any] | None:
        if method != "/hooktest.echo.v1.EchoService/Echo":
            return None
        assert call.instance_id == response["instanceId"]
        return {**response, "signedFor": request["text"]}


async def test_hook_customize_api_response(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, echo=Echo(), signing=Signing()))
    instance_id = await first_instance(runtime)
    _, token = await machine_token(runtime, instance_id, [])
    bearer = {"authorization": f"Bearer {token}"}
    async with client_of(create_app(runtime, run_projections=False)) as client:
        answer = await client.post(
            "/hooktest.echo.v1.EchoService/Echo", json={"text": "hi"}, headers=bearer
        )
    assert answer.json()["text"] == "hi" and answer.json()["signedFor"] == "hi"
    await runtime.close()


class Department:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    async def customize_token(
        self, kind: str, claims: dict[str, Any], user_id: str, runtime: Runtime
    ) -> dict[str, Any] | None:
        from donjon.core.errors import TokenRefused

        self.seen.append((kind, claims.get("sub", "")))
        if user_id == "blocked":
            raise TokenRefused("blocked by the test")
        return {"department": "it", "sub": "someone-else"}


async def test_hook_customize_token(tmp_path: Path) -> None:
    from donjon.core.errors import TokenRefused
    from donjon.plugins.oidc.claims import customized
    from donjon.plugins.oidc.errors import AccessDenied

    # No store is set up: the actions plugin's implementation stays out.
    settings = make_settings(
        sqlite_database(tmp_path / "donjon.db"), Plugins={"actions": {"Enabled": False}}
    )
    plugin = Department()
    runtime = build_runtime(settings, pm=manager(settings, department=plugin))
    try:
        added = await customized(
            runtime, "id_token", {"sub": "u1"}, user_id="u1", client_id="c", instance_id="i"
        )
        assert added == {"department": "it"}  # the reserved `sub` is dropped
        assert plugin.seen == [("id_token", "u1")]
        with pytest.raises(AccessDenied, match="blocked by the test"):
            await customized(
                runtime, "userinfo", {}, user_id="blocked", client_id="", instance_id="i"
            )
        assert issubclass(TokenRefused, Exception)
    finally:
        await runtime.close()


# -- resolution hooks --------------------------------------------------------------------


class TenantHeader(WhoAmI):
    @hookimpl
    async def resolve_instance(self, host: str, headers: dict[str, str]) -> str | None:
        await asyncio.sleep(0)
        if host == "tenants.example":
            return headers.get("x-tenant")
        return None


async def test_hook_resolve_instance(settings: Settings) -> None:
    runtime = await set_up(settings, manager(settings, tenants=TenantHeader()))
    first = await first_instance(runtime)
    app = create_app(runtime, run_projections=False)

    async with client_of(app, "tenants.example") as client:
        answered = await client.get("/hooktest/whoami", headers={"X-Tenant": "tenant-7"})
        unanswered = await client.get("/hooktest/whoami")
        client.base_url = "http://localhost"  # type: ignore[assignment]
        by_domain = await client.get("/hooktest/whoami")

    assert answered.json()["instance_id"] == "tenant-7"  # the plugin answered first
    assert unanswered.status_code == 404  # then the core's domains: none is tenants.example
    assert by_domain.json()["instance_id"] == first  # the plugin returned None: the core answered


class BadgeTokens:
    """Accepts the badge token `badge-42` as the first instance's human administrator."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    async def resolve_principal(
        self, token: str, instance_id: str, runtime: Runtime
    ) -> Principal | None:
        self.asked.append(token)
        if token != "badge-42":
            return None  # not a badge: the core tries its personal access tokens
        async with runtime.db.read() as conn:
            row = (
                await conn.execute(
                    select(users_table.c.id, users_table.c.resource_owner).where(
                        users_table.c.instance_id == instance_id,
                        users_table.c.username == "admin",
                    )
                )
            ).first()
        return Principal(row.id, row.resource_owner, instance_id, "badge") if row else None


async def test_hook_resolve_principal(settings: Settings) -> None:
    badges = BadgeTokens()
    runtime = await set_up(settings, manager(settings, badges=badges))
    instance_id = await first_instance(runtime)
    _, pat = await machine_token(runtime, instance_id, ["IAM_OWNER"])
    path = "/zitadel.org.v2.OrganizationService/ListOrganizations"

    async with client_of(create_app(runtime, run_projections=False)) as client:

        async def status(token: str) -> int:
            r = await client.post(path, json={}, headers={"authorization": f"Bearer {token}"})
            return r.status_code

        by_badge = await status("badge-42")
        by_pat = await status(pat)
        unknown = await status("badge-43")

    assert by_badge == 200  # the plugin answered: the admin, an IAM_OWNER
    assert by_pat == 200  # the plugin returned None: the core's PAT lookup answered
    assert unknown == 401  # nobody knew it
    assert badges.asked == ["badge-42", pat, "badge-43"]  # asked before the core
