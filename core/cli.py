"""The `donjon` command line.

    donjon init | setup | setup cleanup | start | start-from-init | start-from-setup
    donjon projections list | rebuild NAME | rebuild --all
    donjon plugins list
    donjon instances create | list
    donjon <command of a plugin>   (`register_commands`; see docs/plugins.md)

Commands that run setup or serve take --config (repeatable), and the master
key from --masterkey, --masterkeyFile or DONJON_MASTERKEY.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from donjon.core.config import load_settings
from donjon.core.database import cancel_at_next_transaction, cancel_pending, sqlite_busy
from donjon.core.errors import DonjonError, MasterKeyError, PluginError
from donjon.core.keys import read_masterkey
from donjon.core.logs import configure_logging
from donjon.core.plugins import collect_by_plugin, get_plugin_manager
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.settings import Settings

log = logging.getLogger("donjon")
T = TypeVar("T")

config_option = click.option(
    "--config",
    "configs",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A YAML file overriding defaults.yaml; repeatable, later files win.",
)
masterkey_options = [
    click.option(
        "--masterkey",
        envvar=None,
        help="The 32-byte master key (wins over --masterkeyFile and DONJON_MASTERKEY).",
    ),
    click.option(
        "--masterkeyFile",
        "masterkey_file",
        type=click.Path(dir_okay=False),
        help="A file holding the master key (one trailing newline is ignored).",
    ),
]


def with_masterkey(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(masterkey_options):
        fn = option(fn)
    return fn


def settings_from(configs: tuple[str, ...]) -> Settings:
    settings = load_settings(configs)
    configure_logging(settings.Log.Level, settings.Log.Format)
    return settings


CANCEL_WAIT = 10.0


def run(main: Callable[[], Awaitable[T]], *, on_signal: Callable[[str], None] | None = None) -> T:
    """Run `main` in a fresh event loop; SIGTERM/SIGINT cancel it and exit 128+signal.

    `on_signal(reason)` is called first, with a reason such as "canceled by
    SIGTERM". Signals after the first are logged and otherwise ignored, so the
    cancelled work can record why it stopped (SIGKILL still ends the process).
    """
    received: list[int] = []
    asked_boundary = [False]

    async def wrapper() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def cancel(signum: int) -> None:
            name = signal.Signals(signum).name
            if received:
                log.warning("%s received; already stopping", name)
                return
            received.append(signum)
            log.warning("%s received; cancelling", name)
            if on_signal:
                on_signal(f"canceled by {name}")
            deliver(time.monotonic() + CANCEL_WAIT)

        def deliver(give_up_at: float) -> None:
            # On SQLite, stop at the next transaction, never inside a driver
            # call (see donjon.core.database); if no transaction starts within
            # CANCEL_WAIT, cancel anyway.
            assert task is not None
            if task.done():
                return
            if not asked_boundary[0]:
                if not sqlite_busy():
                    task.cancel()
                    return
                asked_boundary[0] = True
                cancel_at_next_transaction()
            if not cancel_pending():
                return  # a transaction boundary raised CancelledError
            if time.monotonic() >= give_up_at:
                task.cancel()
                return
            loop.call_later(0.05, deliver, give_up_at)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, cancel, signum)
        try:
            return await main()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(wrapper())
    except asyncio.CancelledError:
        if received:
            sys.exit(128 + received[0])
        raise


def fail_cleanly(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn DonjonError, and a database that cannot be reached or used, into a
    one-line message on stderr and exit status 1 (the traceback is logged at
    debug level)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except DonjonError as exc:
            click.echo(f"donjon: {exc}", err=True)
            sys.exit(1)
        except (OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
            log.debug("database error", exc_info=exc)
            click.echo(f"donjon: database error: {_describe(exc)}", err=True)
            sys.exit(1)

    return wrapper


def _describe(exc: BaseException) -> str:
    """`Type: first line of the message`, the driver's error rather than SQLAlchemy's wrapper."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    # SQLAlchemy's adapter exceptions wrap the driver's as their cause.
    while type(inner).__module__.startswith("sqlalchemy") and inner.__cause__ is not None:
        inner = inner.__cause__
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0]}" if lines else type(inner).__name__


class DonjonCLI(click.Group):
    """The `donjon` group, plus the commands plugins add (`register_commands`).

    Plugin commands are gathered before the arguments are parsed, from every
    installed plugin; each is guarded so that it fails, saying why, when its
    plugin is disabled by the configuration it runs with. `--help` hides the
    commands of plugins the environment disables.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # command name -> the plugin that added it; None until loaded.
        self._plugin_commands: dict[str, str] | None = None

    def plugin_commands(self) -> dict[str, str]:
        """Add every installed plugin's commands (once); return command name -> plugin."""
        if self._plugin_commands is not None:
            return self._plugin_commands
        self._plugin_commands = {}
        try:
            pm = get_plugin_manager()
            for plugin, command in collect_by_plugin(pm.hook.register_commands):
                if not isinstance(command, click.Command) or not command.name:
                    raise PluginError(
                        f"plugin {plugin}: register_commands must return named click commands"
                    )
                if command.name in self.commands:
                    owner = self._plugin_commands.get(command.name, "core")
                    raise PluginError(
                        f"plugin {plugin} adds the command {command.name!r}, "
                        f"which the {owner} plugin already has"
                    )
                self.add_command(guard_plugin_command(plugin, command))
                self._plugin_commands[command.name] = plugin
        except DonjonError as exc:
            raise click.ClickException(str(exc)) from exc
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        owners = self.plugin_commands()
        disabled = _disabled_by_environment()
        return [n for n in super().list_commands(ctx) if owners.get(n) not in disabled]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self.plugin_commands()
        return super().get_command(ctx, name)


def plugin_enabled(plugin: str, configs: tuple[str, ...] = ()) -> bool:
    """Whether `plugin` is enabled by the defaults, `configs` and the environment.

    Raises ConfigError for a bad configuration, PluginError for a plugin that
    does not load.
    """
    return get_plugin_manager(load_settings(configs)).infos[plugin].enabled


def _disabled_by_environment() -> set[str]:
    """The plugins the defaults and the environment disable (none when that
    configuration is wrong: the error is reported when a command runs)."""
    try:
        pm = get_plugin_manager(load_settings())
    except DonjonError:
        return set()
    return {name for name, info in pm.infos.items() if not info.enabled}


def guard_plugin_command(plugin: str, command: click.Command) -> click.Command:
    """A copy of `command` that first checks that `plugin` is enabled.

    The configuration checked is the command's own `--config` files (when it
    takes `config_option`) and the environment. A disabled plugin, or a
    configuration error, ends the command with a one-line message and status 1.
    """
    guarded = copy.copy(command)
    callback = command.callback

    @fail_cleanly
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not plugin_enabled(plugin, tuple(kwargs.get("configs") or ())):
            raise PluginError(
                f"the {plugin} plugin is disabled (Plugins.{plugin}.Enabled is false), "
                f"so `donjon {command.name}` is not available"
            )
        return callback(*args, **kwargs) if callback is not None else None

    guarded.callback = checked
    return guarded


@click.group(cls=DonjonCLI)
@click.version_option(package_name="donjon")
def cli() -> None:
    """donjon: an event-sourced identity platform."""


# -- init / setup / start -------------------------------------------------------------


async def _init(settings: Settings) -> None:
    from donjon.core.setup.init import initialise

    await initialise(settings.Database)
    log.info("database initialised (%s)", settings.Database.kind)


async def _check_store(runtime: Runtime, key_source: str) -> None:
    """Refuse a store `donjon init` never prepared, or one set up with another master key."""
    from donjon.core.setup.init import require_initialised

    await require_initialised(runtime.db)
    assert runtime.keys is not None
    try:
        await runtime.keys.verify()
    except MasterKeyError as exc:
        raise MasterKeyError(f"{key_source}: {exc}") from None


async def _check_store_before_start(runtime: Runtime, key_source: str) -> None:
    """`donjon start` may come up before init and setup ran elsewhere (it answers 412
    on /debug/ready until they have); the master key is checked when the store has
    its tables."""
    from donjon.core.setup.init import is_initialised

    try:
        if await is_initialised(runtime.db):
            await _check_store(runtime, key_source)
        else:
            log.warning(
                "the database has no donjon tables yet: serving, but /debug/ready answers 412"
                " until `donjon init` and `donjon setup` have run"
            )
    finally:
        await runtime.db.dispose()


def _run_setup(runtime: Runtime, key_source: str) -> None:
    """Run setup in its own event loop; SIGTERM/SIGINT record the running step failed
    and exit 128+signal. The runtime's connections are closed afterwards, so the
    server's event loop opens its own."""
    from donjon.core.setup.init import create_tables
    from donjon.core.setup.runner import SetupRunner

    runner = SetupRunner(runtime)

    def set_reason(reason: str) -> None:
        runner.cancel_reason = reason

    async def main() -> None:
        try:
            await _check_store(runtime, key_source)
            # Core tables a newer donjon added: setup is what an upgrade runs.
            await create_tables(runtime.db)
            await runner.run()
        finally:
            await runtime.db.dispose()

    run(main, on_signal=set_reason)


def _setup_configs(ctx: click.Context, configs: tuple[str, ...]) -> tuple[str, ...]:
    """`donjon setup --config A cleanup --config B` reads A, then B."""
    parent = ctx.parent.params.get("configs", ()) if ctx.parent is not None else ()
    return (*parent, *configs)


@cli.command()
@config_option
@fail_cleanly
def init(configs: tuple[str, ...]) -> None:
    """Create the database and its user (with Database.postgres.Admin.DSN) and the tables."""
    settings = settings_from(configs)
    run(lambda: _init(settings))


@cli.group(invoke_without_command=True)
@config_option
@with_masterkey
@click.pass_context
@fail_cleanly
def setup(
    ctx: click.Context, configs: tuple[str, ...], masterkey: str | None, masterkey_file: str | None
) -> None:
    """Run the setup steps that are due (migrations, projection rebuilds, first instance).

    Steps run in order and are recorded as system.migration.* events; SIGTERM or
    SIGINT records the running step failed and exits 128+signal, and the next
    setup resumes it. A step left started by a killed process is taken over
    once its lease (Setup.LeaseDuration) expires.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(configs)
    key, source = read_masterkey(masterkey, masterkey_file)
    _run_setup(build_runtime(settings, masterkey=key), source)


@setup.command("cleanup")
@config_option
@click.option(
    "--force",
    is_flag=True,
    help="Also steps whose lease is live: their process stops them at its next heartbeat.",
)
@click.pass_context
@fail_cleanly
def setup_cleanup(ctx: click.Context, configs: tuple[str, ...], force: bool) -> None:
    """Record steps left `started` as failed, so the next setup reruns them at once.

    Never needed to recover: the next setup takes such a step over once its
    lease expires. A step whose lease is live is left alone without --force.
    """
    from donjon.core.setup.init import require_initialised
    from donjon.core.setup.runner import CleanupReport, SetupRunner

    runtime = build_runtime(settings_from(_setup_configs(ctx, configs)))

    async def main() -> CleanupReport:
        try:
            await require_initialised(runtime.db)
            return await SetupRunner(runtime).cleanup(force=force)
        finally:
            await runtime.close()

    report = run(main)
    for name in report.cleaned:
        click.echo(f"marked failed: {name}")
    for lease in report.running:
        until = lease.expires_at.isoformat(timespec="seconds")
        click.echo(
            f"left alone: {lease.step} is running in {lease.holder}"
            f" (lease until {until}; --force to mark it failed)"
        )
    if not report.cleaned and not report.running:
        click.echo("no step was left started")


def _start_command(name: str, *, do_init: bool, do_setup: bool, doc: str) -> click.Command:
    @cli.command(name, help=doc)
    @config_option
    @with_masterkey
    @fail_cleanly
    def command(
        configs: tuple[str, ...], masterkey: str | None, masterkey_file: str | None
    ) -> None:
        from donjon.core.server import run_server

        settings = settings_from(configs)
        key, source = read_masterkey(masterkey, masterkey_file)
        if do_init:
            run(lambda: _init(settings))
        runtime = build_runtime(settings, masterkey=key)
        if do_setup:
            _run_setup(runtime, source)
        else:
            run(lambda: _check_store_before_start(runtime, source))
        # uvicorn handles SIGTERM/SIGINT itself: a graceful shutdown, exit 0.
        run_server(runtime)

    return command


_start_command(
    "start",
    do_init=False,
    do_setup=False,
    doc="Serve on Port. /debug/ready answers 412 until setup has completed.",
)
_start_command("start-from-setup", do_init=False, do_setup=True, doc="Run setup, then serve.")
_start_command(
    "start-from-init", do_init=True, do_setup=True, doc="Run init and setup, then serve."
)


# -- plugins ------------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """Inspect plugins: built-in ones and those of the entry-point group donjon.plugins."""


@plugins.command("list")
@config_option
@fail_cleanly
def plugins_list(configs: tuple[str, ...]) -> None:
    """Show each plugin: name, version, source and state (enabled, disabled, core)."""
    settings = settings_from(configs)
    pm = get_plugin_manager(settings)
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "version", "source", "state")
    for info in sorted(pm.infos.values(), key=lambda i: (i.source != "builtin", i.name)):
        table.add_row(info.name, info.version, info.source, info.state)
    Console(width=120).print(table)


# -- instances and projections: their own modules, which build on the helpers above ---

from donjon.core.instances_cli import instances  # noqa: E402
from donjon.core.projections_cli import projections  # noqa: E402

cli.add_command(instances)
cli.add_command(projections)


def main() -> None:
    cli()
