"""The plugin host with a real third-party plugin: tests/fixtures/donjon-sample-plugin.

`make test` pip-installs the sample; donjon (and these tests) only ever reach
it through its entry point `sample` in the group `donjon.plugins`. It is
never imported here by name: its module is what the plugin manager loaded.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution, entry_points, version
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from donjon.core import cli as donjon_cli
from donjon.core import hookimpl
from donjon.core.app import create_app
from donjon.core.config import load_settings
from donjon.core.errors import ConfigError, PluginError, UnknownEventTypeError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.plugins import DonjonPluginManager, PluginInfo, get_plugin_manager
from donjon.core.runtime import Runtime, build_runtime
from tests.core.plugins_support import client_of, eventually, first_instance, set_up

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "donjon-sample-plugin"
SAMPLE_DIST = "donjon-sample-plugin"
SAMPLE_VERSION = tomllib.loads((SAMPLE_DIR / "pyproject.toml").read_text())["project"]["version"]
DONJON = Path(sys.executable).with_name("donjon")
GREETING = "sample.greeting.added"

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session", autouse=True)
def sample_plugin_installed() -> None:
    """Fail (never skip) when the sample is not installed, or is an older copy."""
    run_make_test = (
        "run `make test`, which first runs "
        "`pip install ./tests/fixtures/donjon-sample-plugin` into the venv"
    )
    try:
        dist = distribution(SAMPLE_DIST)
    except PackageNotFoundError:
        dist = None
    if dist is None:
        pytest.fail(
            f"the sample plugin {SAMPLE_DIST} is not installed: {run_make_test}", pytrace=False
        )
    for source in sorted((SAMPLE_DIR / "donjon_sample_plugin").glob("*.py")):
        installed = Path(str(dist.locate_file(f"donjon_sample_plugin/{source.name}")))
        if not installed.is_file() or installed.read_text() != source.read_text():
            pytest.fail(
                f"the installed sample plugin differs from its source ({source.name}): "
                f"{run_make_test}",
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def keep_pytest_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs must not replace the root log handlers pytest captures with."""
    monkeypatch.setattr(donjon_cli, "configure_logging", lambda *args, **kwargs: None)


# -- helpers --------------------------------------------------------------------------


def write_config(path: Path, database: Path, plugins: dict[str, Any] | None = None) -> Path:
    tree: dict[str, Any] = {"Database": {"sqlite": {"Path": str(database)}}}
    if plugins is not None:
        tree["Plugins"] = plugins
    path.write_text(yaml.safe_dump(tree))
    return path


def donjon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `donjon` command, with no DONJON_ variable but those in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DONJON_")}
    return subprocess.run(
        [str(DONJON), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table as lists of cell texts."""
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        if len(cells) == 6 and cells[1] and cells[1] != "name":
            rows.append(cells[1:-1])
    return rows


def sample_module(runtime: Runtime) -> ModuleType:
    """The sample plugin as the plugin manager loaded it from its entry point."""
    module = runtime.pm.get_plugin("sample")
    assert isinstance(module, ModuleType)
    return module


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "donjon.db"


@pytest.fixture
async def runtime(db_path: Path, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A set-up store on SQLite (the sample's projection built, its step run)."""
    rt = await set_up(load_settings([write_config(tmp_path / "c.yaml", db_path)], env={}))
    try:
        yield rt
    finally:
        await rt.close()


# -- discovery and listing ------------------------------------------------------------


def test_sample_plugin_is_found_through_its_entry_point() -> None:
    [ep] = entry_points(group="donjon.plugins", name="sample")
    assert ep.value == "donjon_sample_plugin"

    pm = get_plugin_manager()

    assert pm.infos["sample"] == PluginInfo(
        "sample", SAMPLE_VERSION, f"entry point {SAMPLE_DIST}", essential=False, enabled=True
    )
    module = pm.get_plugin("sample")
    assert module.__name__ == "donjon_sample_plugin"
    # The installed copy, not the fixture's source tree.
    assert SAMPLE_DIR not in Path(module.__file__).parents
    assert pm.infos["core"] == PluginInfo(
        "core", version("donjon"), "builtin", essential=True, enabled=True
    )


def test_plugins_list_shows_name_version_source_and_state() -> None:
    result = donjon("plugins", "list")  # a fresh process: only the entry point can find the sample

    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == [
        ["actions", version("donjon"), "builtin", "enabled"],
        ["core", version("donjon"), "builtin", "enabled (core)"],
        ["login", version("donjon"), "builtin", "enabled"],
        ["oidc", version("donjon"), "builtin", "enabled"],
        ["sample", SAMPLE_VERSION, f"entry point {SAMPLE_DIST}", "enabled"],
    ]


@pytest.mark.parametrize("how", ["env", "config file"])
def test_plugins_list_shows_a_plugin_disabled_by_configuration(tmp_path: Path, how: str) -> None:
    args, env = ["plugins", "list"], {}
    if how == "env":
        env["DONJON_PLUGINS_SAMPLE_ENABLED"] = "false"
    else:
        config = write_config(
            tmp_path / "c.yaml", tmp_path / "d.db", {"sample": {"Enabled": False}}
        )
        args += ["--config", str(config)]

    result = CliRunner().invoke(donjon_cli.cli, args, env=env)

    assert result.exit_code == 0, result.output
    assert table_rows(result.output)[-1] == [
        "sample",
        SAMPLE_VERSION,
        f"entry point {SAMPLE_DIST}",
        "disabled",
    ]


# -- enabling and disabling -------------------------------------------------------------


@pytest.mark.parametrize("how", ["default", "env", "config file"])
async def test_disabling_the_sample_removes_its_event_type_projection_migration_routes_and_settings(
    tmp_path: Path, how: str
) -> None:
    files, env = [], {}
    if how == "env":
        env["DONJON_PLUGINS_SAMPLE_ENABLED"] = "false"
    if how == "config file":
        files.append(
            write_config(tmp_path / "c.yaml", tmp_path / "d.db", {"sample": {"enabled": "no"}})
        )
    if not files:
        files.append(write_config(tmp_path / "c.yaml", tmp_path / "d.db"))
    runtime = build_runtime(load_settings(files, env=env))
    present = how == "default"
    try:
        assert (GREETING in runtime.registry.types) is present
        assert ("sample_greetings" in [p.name for p in runtime.projections]) is present
        assert ("sample.welcome" in [m.name for m in runtime.migrations()]) is present
        assert ("sample" in runtime.plugin_settings) is present
        paths = {route.path for route in create_app(runtime).app.routes}
        assert ("/sample/greetings" in paths) is present
        if not present:
            greeting = (
                runtime.registry.types.get(GREETING)
                or get_plugin_manager().get_plugin("sample").greetings.GreetingAdded
            )
            changes = AggregateChanges(
                Aggregate("sample.greeting", "1", "i", "i"), [greeting("Ada", "Hi")]
            )
            with pytest.raises(UnknownEventTypeError, match=GREETING):
                await runtime.store.push(changes, creator="test")
    finally:
        await runtime.close()


def test_commands_of_a_disabled_plugin_are_hidden_and_refuse_to_run(tmp_path: Path) -> None:
    runner = CliRunner()
    config = write_config(tmp_path / "c.yaml", tmp_path / "d.db", {"sample": {"Enabled": False}})

    listed = runner.invoke(donjon_cli.cli, ["--help"], env={})
    hidden = runner.invoke(
        donjon_cli.cli, ["--help"], env={"DONJON_PLUGINS_SAMPLE_ENABLED": "false"}
    )
    by_env = runner.invoke(
        donjon_cli.cli, ["sample-greet", "Ada"], env={"DONJON_PLUGINS_SAMPLE_ENABLED": "false"}
    )
    by_file = runner.invoke(
        donjon_cli.cli, ["sample-greet", "Ada", "--config", str(config)], env={}
    )

    assert "sample-greet" in listed.output
    assert "sample-greet" not in hidden.output
    refusal = "donjon: the sample plugin is disabled (Plugins.sample.Enabled is false)"
    assert (by_env.exit_code, by_file.exit_code) == (1, 1)
    assert refusal in by_env.output
    assert refusal in by_file.output


def test_disabling_the_core_plugin_fails_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tmp_path / "d.db", {"core": {"Enabled": False}})

    with pytest.raises(
        ConfigError, match=r"^Plugins\.core\.Enabled: the core plugin is part of the core"
    ):
        get_plugin_manager(load_settings([config], env={}))
    result = CliRunner().invoke(
        donjon_cli.cli, ["plugins", "list", "--config", str(config)], env={}
    )
    assert result.exit_code == 1
    assert "donjon: Plugins.core.Enabled: the core plugin is part of the core" in result.output


def test_an_unknown_plugin_name_fails_naming_it() -> None:
    settings = load_settings(env={"DONJON_PLUGINS_NOSUCH_ENABLED": "true"})

    with pytest.raises(ConfigError) as failure:
        get_plugin_manager(settings)

    assert str(failure.value) == (
        "Plugins.nosuch: no plugin named 'nosuch' is installed"
        " (installed: actions, core, login, oidc, sample)"
    )


def test_enabled_must_be_a_boolean() -> None:
    settings = load_settings(env={"DONJON_PLUGINS_SAMPLE_ENABLED": "sometimes"})

    with pytest.raises(
        ConfigError, match=r"^Plugins\.sample\.Enabled: expected true or false, got 'sometimes'"
    ):
        get_plugin_manager(settings)


# -- plugin settings ------------------------------------------------------------------


async def test_plugin_settings_come_from_defaults_files_and_environment(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", tmp_path / "d.db", {"sample": {"WelcomeName": "Setup"}}
    )
    runtime = build_runtime(
        load_settings([config], env={"DONJON_PLUGINS_SAMPLE_TRUSTINSTANCEHEADER": "true"})
    )
    try:
        section = runtime.plugin_settings["sample"]
        assert (section.Greeting, section.WelcomeName, section.TrustInstanceHeader) == (
            "Hello",
            "Setup",
            True,
        )
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        (
            {"sample": {"Colour": "red"}},
            r"^Plugins\.sample\.Colour: unknown key .*known here: Greeting, WelcomeName, "
            r"TrustInstanceHeader",
        ),
        (
            {"sample": {"TrustInstanceHeader": "maybe"}},
            r"^Plugins\.sample\.TrustInstanceHeader: expected true or false",
        ),
        (
            {"sample": {"Greeting": ["Hi"]}},
            r"^Plugins\.sample\.Greeting: expected a string, got a list",
        ),
        (
            {"core": {"Colour": "red"}},
            r"^Plugins\.core\.Colour: unknown key \(the core plugin has no settings\)",
        ),
    ],
)
def test_bad_plugin_settings_fail_naming_the_key(
    tmp_path: Path, plugins: dict[str, Any], message: str
) -> None:
    config = write_config(tmp_path / "c.yaml", tmp_path / "d.db", plugins)

    with pytest.raises(ConfigError, match=message):
        build_runtime(load_settings([config], env={}))


def test_a_disabled_plugins_settings_are_not_checked(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", tmp_path / "d.db", {"sample": {"Enabled": False, "Colour": "red"}}
    )

    runtime = build_runtime(load_settings([config], env={}))

    assert "sample" not in runtime.plugin_settings


# -- the sample end to end ------------------------------------------------------------


async def test_greetings_route_event_projection_and_lifecycle_hooks_end_to_end(
    runtime: Runtime,
) -> None:
    sample = sample_module(runtime)
    instance_id = await first_instance(runtime)
    app = create_app(runtime)

    async with client_of(app) as client:
        status = (await client.get("/sample/status")).json()
        created = await client.post("/sample/greetings", json={"name": "Ada"})
        empty = await client.post("/sample/greetings", json={"name": " "})
        listed = await eventually(lambda: _greetings(client))
        seen = await eventually(
            lambda: created.json()["position"] in sample.lifecycle.SEEN_GREETINGS
        )

    # on_startup is async: awaited before the first request.
    assert status == {"started": True, "instance_id": instance_id}
    assert created.status_code == 201
    assert created.json()["text"] == "Hello, Ada"
    assert empty.status_code == 400
    # The async projection, followed by the runner the app starts.
    assert listed == [{"id": created.json()["id"], "name": "Ada", "text": "Hello, Ada"}]
    # on_events_pushed is async: its task ran.
    assert seen
    assert sample.lifecycle.LIFECYCLE[-2:] == [("startup", id(runtime)), ("shutdown", id(runtime))]


async def _greetings(client: Any) -> list[dict[str, Any]]:
    return (await client.get("/sample/greetings")).json()


async def test_sample_greetings_stay_in_their_instance(runtime: Runtime, tmp_path: Path) -> None:
    from donjon.core.instance import add_instance

    await runtime.store.push(add_instance("other", "other", ["other.example"]), creator="test")
    app = create_app(runtime, run_projections=False)
    async with client_of(app, "other.example") as client:
        await client.post("/sample/greetings", json={"name": "Bob"})
        await runtime.runner.catch_up(runtime.projection("sample_greetings"))
        assert [g["name"] for g in await _greetings(client)] == ["Bob"]
        client.base_url = "http://localhost"  # type: ignore[assignment]
        assert await _greetings(client) == []


@pytest.mark.parametrize("trusted", [True, False])
async def test_sample_resolves_the_instance_from_its_header_only_when_trusted(
    runtime: Runtime, db_path: Path, tmp_path: Path, trusted: bool
) -> None:
    instance_id = await first_instance(runtime)
    config = write_config(
        tmp_path / "trusted.yaml", db_path, {"sample": {"TrustInstanceHeader": trusted}}
    )
    served = build_runtime(load_settings([config], env={}))
    app = create_app(served, run_projections=False)

    async with client_of(app, "proxy.internal") as client:
        response = await client.get("/sample/status", headers={"X-Sample-Instance": instance_id})

    if trusted:
        assert response.status_code == 200
        assert response.json()["instance_id"] == instance_id
    else:
        assert response.status_code == 404
        assert response.json()["error"] == "instance_not_found"


async def test_sample_greet_command_and_setup_step_push_greetings(
    tmp_path: Path, db_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.yaml", db_path, {"sample": {"Greeting": "Bonjour", "WelcomeName": "Setup"}}
    )
    runtime = await set_up(load_settings([config], env={}))
    try:
        result = await asyncio.to_thread(donjon, "sample-greet", "Ada", "--config", str(config))

        assert result.returncode == 0, result.stderr
        instance_id = await first_instance(runtime)
        assert re.fullmatch(
            rf"Bonjour, Ada \(greeting \d+, instance {instance_id}\)\n", result.stdout
        )
        await runtime.runner.catch_up(runtime.projection("sample_greetings"))
        greetings = sample_module(runtime).greetings
        texts = [g["text"] for g in await greetings.greetings_of(runtime, instance_id)]
        assert texts == ["Bonjour, Setup", "Bonjour, Ada"]
    finally:
        await runtime.close()


# -- what the host refuses --------------------------------------------------------------


class CommandClash:
    @hookimpl
    def register_commands(self) -> list[click.Command]:
        return [click.Command("init", callback=lambda: None)]


class MisspelledHook:
    @hookimpl
    def register_route(self) -> list[Any]:
        return []


class WrapperHook:
    @hookimpl(wrapper=True)
    def register_routes(self) -> Any:
        return (yield)


class UnknownArgument:
    @hookimpl
    def on_startup(self, runtime: Any, app: Any) -> None:
        pass


@dataclass
class SampleLike:
    Greeting: str = "Hi"


class SettingsForAnother:
    @hookimpl
    def register_settings(self) -> list[Any]:
        from donjon.core.plugins import SettingsSection

        return [SettingsSection("core", SampleLike)]


def _with(plugin: object, name: str = "extra") -> DonjonPluginManager:
    pm = get_plugin_manager()
    pm.add_plugin(plugin, PluginInfo(name, "1.0", "test", False, True))
    return pm


def test_a_plugin_command_cannot_replace_a_core_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        donjon_cli, "get_plugin_manager", lambda settings=None: _with(CommandClash())
    )
    group = donjon_cli.DonjonCLI(name="donjon", commands={"init": donjon_cli.init})

    result = CliRunner().invoke(group, ["--help"])

    assert result.exit_code == 1
    assert (
        "plugin extra adds the command 'init', which the core plugin already has" in result.output
    )


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (MisspelledHook(), "plugin extra implements register_route, which is not a donjon hook"),
        (WrapperHook(), "plugin extra: register_routes is a hook wrapper"),
        (UnknownArgument(), "plugin extra (test) cannot be registered"),
    ],
)
def test_a_plugin_with_a_wrong_hook_is_refused_naming_it(plugin: object, message: str) -> None:
    with pytest.raises(PluginError) as failure:
        _with(plugin)
    assert message in str(failure.value)


def test_a_plugin_name_is_unique_ignoring_case() -> None:
    with pytest.raises(PluginError, match="two plugins are named 'Sample'"):
        _with(object(), name="Sample")


def test_a_plugin_cannot_register_settings_for_another(tmp_path: Path) -> None:
    from donjon.core.plugins import plugin_settings

    pm = _with(SettingsForAnother())

    with pytest.raises(PluginError, match="plugin extra registers settings for Plugins.core"):
        plugin_settings(pm, load_settings(env={}))
