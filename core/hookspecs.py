"""Every public hook of donjon, grouped by when it runs.

Implementations use `donjon.core.hookimpl` and may take any subset of a hook's
arguments (so hooks can grow new ones). Any hook may return its value or an
awaitable of it. Hooks named `register_*` return lists that donjon
concatenates; `resolve_*` hooks are firstresult (the first non-None answer
wins); `on_*` hooks observe and return nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from donjon.core.events import Event, StoredEvent
    from donjon.core.plugins import SettingsSection
    from donjon.core.projections.base import Projection
    from donjon.core.runtime import Runtime
    from donjon.core.settings import Settings
    from donjon.core.setup.migrations import Migration

hookspec = pluggy.HookspecMarker("donjon")

# -- registration: called once while the runtime is built ------------------------


@hookspec
def register_event_types() -> list[type[Event]]:
    """Return the event classes this plugin defines.

    Called when the runtime is built, before anything is read or pushed. An
    event whose type no plugin registered is refused at push and cannot be
    decoded when read.

    :return: a list of `donjon.core.events.Event` subclasses.
    """


@hookspec
def register_settings() -> list[SettingsSection]:
    """Return the schema of this plugin's own configuration section.

    Called when the runtime is built. `Plugins.<name>` in the configuration
    (minus `Enabled`) is checked against the schema; a wrong key fails start
    naming it. The parsed section is `runtime.plugin_settings[name]`.

    :return: a list of `donjon.core.plugins.SettingsSection`.
    """


@hookspec
def register_projections(settings: Settings) -> list[Projection]:
    """Return the projections (read models) this plugin maintains.

    Called when the runtime is built. Inline projections are written in every
    push transaction; async ones are followed by the projection runner in
    `donjon start`. A projection whose `version` changed is rebuilt by
    `donjon setup`.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.projections.Projection` instances.
    """


@hookspec
def register_migrations(settings: Settings) -> list[Migration]:
    """Return this plugin's setup steps, in the order they must run.

    Called by `donjon setup` (and `start-from-*`). Steps run after the core's;
    each is recorded as `system.migration.started|done|failed` events and runs
    once, or again when it is repeatable and its `rerun_when` says so.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.setup.migrations.Migration`.
    """


@hookspec
def register_routes(settings: Settings) -> list[Any]:
    """Return Litestar route handlers, controllers or routers to serve.

    Called when the HTTP app is built by `donjon start`. Handlers may take the
    `runtime` and `instance` dependencies the app provides.

    :param settings: the loaded configuration.
    :return: a list of Litestar route handlers, `Controller` classes or `Router`s.
    """


@hookspec
def register_commands() -> list[click.Command]:
    """Return click commands to add to the `donjon` command line.

    Called when the `donjon` command starts, before arguments are parsed, for
    every installed plugin (a disabled plugin's command says so when run).

    :return: a list of `click.Command` objects.
    """


# -- lifecycle: called by `donjon start` ------------------------------------------


@hookspec
def on_startup(runtime: Runtime) -> None | Awaitable[None]:
    """Observe that the server is starting; the runtime is ready for use.

    Called once in `donjon start` before the first request is served. An
    exception stops the start.

    :param runtime: the process's `donjon.core.runtime.Runtime`.
    """


@hookspec
def on_shutdown(runtime: Runtime) -> None | Awaitable[None]:
    """Observe that the server is stopping (SIGTERM or SIGINT).

    Called once after the last request has been answered, before the database
    pool closes. Exceptions are logged and ignored.

    :param runtime: the process's `donjon.core.runtime.Runtime`.
    """


@hookspec
def on_events_pushed(events: list[StoredEvent]) -> None:
    """Observe events this process has just committed.

    Called after each successful push, in the pushing process only, with the
    events as stored (positions assigned). It must be quick and must not raise
    (exceptions are logged and ignored); durable reactions belong in an async
    projection, which also sees other processes' events.

    :param events: the pushed events in position order.
    """


# -- resolution: firstresult --------------------------------------------------------


@hookspec(firstresult=True)
def resolve_instance(host: str, headers: dict[str, str], runtime: Runtime) -> str | None:
    """Map a request to the id of the instance it addresses.

    Called for every request outside `/debug/`. The core answers from the
    instance domains (the Host header without its port); a plugin may answer
    first, for example from a trusted proxy header. Return None to let the
    next implementation decide; when none answers, the request gets 404.

    :param host: the request's host, lower-cased, without the port.
    :param headers: the request headers, names lower-cased.
    :param runtime: the process's runtime.
    :return: an instance id, or None.
    """
