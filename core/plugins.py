"""The plugin host: builds the pluggy manager, finds plugins, enables them, calls hooks.

Built-in plugins are registered like third-party ones; third-party plugins
come from the entry-point group `donjon.plugins`. Nothing is loaded at import
time: `get_plugin_manager()` is the factory.

Hooks are called one implementation at a time (never through pluggy's
all-at-once call) so that each implementation's value may be an awaitable:

- `collect` for `register_*` hooks (synchronous callers; an awaitable is run
  to completion on a private event loop),
- `call_all` for `on_*` hooks in async code (each awaited in turn),
- `notify` for `on_*` hooks in synchronous code inside the event loop
  (awaitables become tasks; exceptions are logged),
- `first_result` for `resolve_*` hooks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points, version
from typing import Any

import pluggy

from donjon.core import hookimpl, hookspecs
from donjon.core.config import parse
from donjon.core.errors import ConfigError, PluginError
from donjon.core.settings import Settings

log = logging.getLogger(__name__)

PROJECT = "donjon"
ENTRY_POINT_GROUP = "donjon.plugins"

# Built-in plugins: (name, module, essential). Essential ones cannot be disabled.
BUILTIN_PLUGINS: list[tuple[str, str, bool]] = [
    ("core", "donjon.core.builtin", True),
    ("oidc", "donjon.plugins.oidc", False),
    ("login", "donjon.plugins.login", False),
    ("actions", "donjon.actions", False),
]

__all__ = [
    "ENTRY_POINT_GROUP",
    "DonjonPluginManager",
    "PluginInfo",
    "SettingsSection",
    "apply_enabled",
    "call_all",
    "chain",
    "collect_results",
    "collect",
    "collect_by_plugin",
    "first_result",
    "get_plugin_manager",
    "hookimpl",
    "notify",
    "plugin_settings",
]


@dataclass(frozen=True)
class SettingsSection:
    """A plugin's configuration schema: `Plugins.<plugin>` is parsed into `schema`.

    `plugin` is the registering plugin's own name; `schema` is a dataclass
    whose fields (with defaults) are the section's keys.
    """

    plugin: str
    schema: type


@dataclass(frozen=True)
class PluginInfo:
    """What `donjon plugins list` shows about one plugin."""

    name: str
    version: str
    #: "builtin", or "entry point <distribution>" for a third-party plugin.
    source: str
    #: Essential plugins are part of the core and cannot be disabled.
    essential: bool
    enabled: bool

    @property
    def state(self) -> str:
        if self.essential:
            return "enabled (core)"
        return "enabled" if self.enabled else "disabled"


class DonjonPluginManager(pluggy.PluginManager):
    """pluggy's manager plus each plugin's `PluginInfo`, disabled (unregistered) ones included."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def add_plugin(self, plugin: object, info: PluginInfo) -> None:
        """Register `plugin` under `info.name`.

        Raises PluginError when the name (compared case-insensitively) is
        taken, when the plugin implements a hook donjon does not have, takes
        an argument its hook does not pass, or declares a hook wrapper.

        A plugin may add hooks of its own for plugins registered after it:
        its attribute `HOOKSPECS` (a class or module of `@hookspec`
        functions) is added first, as the login plugin's `register_login_steps`.
        """
        taken = self.find(info.name)
        if taken is not None:
            raise PluginError(
                f"two plugins are named {info.name!r} ({self.infos[taken].source}, {info.source})"
            )
        specs = getattr(plugin, "HOOKSPECS", None)
        try:
            if specs is not None:
                self.add_hookspecs(specs)
            self.register(plugin, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(
                f"plugin {info.name} ({info.source}) cannot be registered: {exc}"
            ) from exc
        try:
            self._check_implementations(plugin, info.name)
        except PluginError:
            self.unregister(plugin)
            raise
        self.infos[info.name] = info

    def _check_implementations(self, plugin: object, name: str) -> None:
        for caller in self.get_hookcallers(plugin) or ():
            if caller.spec is None:
                known = ", ".join(sorted(n for n in vars(self.hook) if not n.startswith("_")))
                raise PluginError(
                    f"plugin {name} implements {caller.name}, which is not a donjon hook "
                    f"(hooks: {known})"
                )
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                    raise PluginError(
                        f"plugin {name}: {caller.name} is a hook wrapper; "
                        "donjon hooks do not support wrappers"
                    )

    def find(self, name: str) -> str | None:
        """The registered name equal to `name` ignoring case, or None."""
        lowered = name.lower()
        return next((n for n in self.infos if n.lower() == lowered), None)

    def disable(self, name: str) -> None:
        """Unregister plugin `name`; ConfigError when it is essential."""
        info = self.infos[name]
        if info.essential:
            raise ConfigError(
                f"Plugins.{name}.Enabled: the {name} plugin is part of the core "
                "and cannot be disabled"
            )
        if not info.enabled:
            return
        self.unregister(name=name)
        self.infos[name] = dataclasses.replace(info, enabled=False)


def get_plugin_manager(settings: Settings | None = None) -> DonjonPluginManager:
    """Build a plugin manager with every built-in and installed plugin.

    Built-in plugins register first, then the entry points of the group
    `donjon.plugins`, sorted by name. With `settings`, plugins whose
    `Plugins.<name>.Enabled` is false are unregistered (see `apply_enabled`).
    Raises PluginError when a plugin fails to load or register.
    """
    pm = DonjonPluginManager()
    donjon_version = version("donjon")
    for name, module_name, essential in BUILTIN_PLUGINS:
        pm.add_plugin(
            import_module(module_name), PluginInfo(name, donjon_version, "builtin", essential, True)
        )
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        dist = ep.dist
        source = f"entry point {dist.name}" if dist else f"entry point {ep.value}"
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name} ({ep.value}, {source}) failed to load: {exc}"
            ) from exc
        pm.add_plugin(
            plugin, PluginInfo(ep.name, dist.version if dist else "unknown", source, False, True)
        )
    if settings is not None:
        apply_enabled(pm, settings)
    return pm


def apply_enabled(pm: DonjonPluginManager, settings: Settings) -> None:
    """Disable the plugins whose `Plugins.<name>.Enabled` is false.

    Plugin names match case-insensitively (environment variables arrive
    lower-cased). Raises ConfigError naming the key for a section that names
    no installed plugin, an `Enabled` that is not a boolean, or a core plugin
    disabled.
    """
    for key, section in settings.Plugins.items():
        name = _installed_name(pm, key)
        enabled_key = next((k for k in section if k.lower() == "enabled"), None)
        if enabled_key is None:
            continue
        if parse(bool, section[enabled_key], f"Plugins.{key}.Enabled") is False:
            pm.disable(name)


def plugin_settings(pm: DonjonPluginManager, settings: Settings) -> dict[str, Any]:
    """Parse each enabled plugin's `Plugins.<name>` section against the schema it registered.

    Returns the parsed sections by plugin name. Raises ConfigError naming
    `Plugins.<name>.<Key>` for an unknown key or a wrong value, and
    PluginError for a plugin registering another's section, two sections,
    or a schema that is not a dataclass.
    """
    schemas: dict[str, type] = {}
    for owner, section in collect_by_plugin(pm.hook.register_settings):
        if not isinstance(section, SettingsSection) or not dataclasses.is_dataclass(section.schema):
            raise PluginError(
                f"plugin {owner}: register_settings must return SettingsSection(plugin, dataclass)"
            )
        if section.plugin != owner:
            raise PluginError(
                f"plugin {owner} registers settings for Plugins.{section.plugin}; "
                f"a plugin's settings live under its own name, Plugins.{owner}"
            )
        if owner in schemas:
            raise PluginError(f"plugin {owner} registers two settings sections")
        schemas[owner] = section.schema
    sections = {
        _installed_name(pm, key): (key, section) for key, section in settings.Plugins.items()
    }
    parsed: dict[str, Any] = {}
    for name, info in pm.infos.items():
        key, raw = sections.get(name, (name, {}))
        own = {k: v for k, v in raw.items() if k.lower() != "enabled"}
        if name in schemas:
            parsed[name] = parse(schemas[name], own, f"Plugins.{key}")
        elif own and info.enabled:
            raise ConfigError(
                f"Plugins.{key}.{next(iter(own))}: unknown key (the {name} plugin has no settings)"
            )
    return parsed


def _installed_name(pm: DonjonPluginManager, key: str) -> str:
    name = pm.find(key)
    if name is None:
        installed = ", ".join(sorted(pm.infos))
        raise ConfigError(
            f"Plugins.{key}: no plugin named {key!r} is installed (installed: {installed})"
        )
    return name


# -- calling hooks ----------------------------------------------------------------------


def collect(hook: pluggy.HookCaller, /, **kwargs: Any) -> list[Any]:
    """Call a `register_*` hook and concatenate the lists, in registration order."""
    return [item for _plugin, item in collect_by_plugin(hook, **kwargs)]


def collect_by_plugin(hook: pluggy.HookCaller, /, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a `register_*` hook: every item of every list, with the name of its plugin.

    Lists come in registration order (built-in plugins first, pluggy's
    `tryfirst`/`trylast` respected). An implementation may return None (no
    items) or an awaitable, which is run to completion here. Raises
    PluginError naming the plugin when a value is not a list.
    """
    out: list[tuple[str, Any]] = []
    for impl in reversed(_call_order(hook, kwargs)):
        value = _run_to_completion(_call(impl, kwargs))
        if value is None:
            continue
        if not isinstance(value, list | tuple):
            raise PluginError(
                f"plugin {impl.plugin_name}: {hook.name} must return a list, "
                f"got {type(value).__name__}"
            )
        out.extend((impl.plugin_name, item) for item in value)
    return out


async def call_all(
    hook: pluggy.HookCaller, /, *, isolate: bool = False, **kwargs: Any
) -> list[Any]:
    """Call an `on_*` hook from async code: each implementation in pluggy's order,
    awaited before the next starts. Returns the values in call order.

    An exception propagates and the remaining implementations are not called,
    unless `isolate`: then it is logged and the next implementation runs.
    """
    values: list[Any] = []
    for impl in _call_order(hook, kwargs):
        try:
            values.append(await _await_if_needed(_call(impl, kwargs)))
        except Exception:
            if not isolate:
                raise
            log.exception("plugin %s: %s failed", impl.plugin_name, hook.name)
    return values


def notify(hook: pluggy.HookCaller, /, **kwargs: Any) -> None:
    """Call an `on_*` hook from synchronous code running in the event loop.

    Each implementation is called in pluggy's order; an exception is logged
    and the next one still runs. An awaitable is scheduled as a task (it is
    not waited for); its exception is logged too.
    """
    for impl in _call_order(hook, kwargs):
        try:
            value = _call(impl, kwargs)
        except Exception:
            log.exception("plugin %s: %s failed", impl.plugin_name, hook.name)
            continue
        if inspect.isawaitable(value):
            task = asyncio.ensure_future(value)
            _background.add(task)
            task.add_done_callback(_make_reporter(impl.plugin_name, hook.name))


async def chain(hook: pluggy.HookCaller, value_name: str, /, **kwargs: Any) -> Any:
    """Call a `customize_*` hook that rewrites a value: each implementation in pluggy's
    order gets the value so far as `kwargs[value_name]` and returns a replacement, or
    None to keep it. Returns the final value; an exception propagates."""
    for impl in _call_order(hook, kwargs):
        changed = await _await_if_needed(_call(impl, kwargs))
        if changed is not None:
            kwargs[value_name] = changed
    return kwargs[value_name]


async def collect_results(hook: pluggy.HookCaller, /, **kwargs: Any) -> list[Any]:
    """Call a `customize_*` hook that contributes: every implementation's value (None
    left out), in registration order (built-in plugins first); awaitables awaited."""
    values = []
    for impl in reversed(_call_order(hook, kwargs)):
        value = await _await_if_needed(_call(impl, kwargs))
        if value is not None:
            values.append(value)
    return values


async def first_result(hook: pluggy.HookCaller, /, **kwargs: Any) -> Any:
    """Call a firstresult (`resolve_*`) hook: try each implementation in pluggy's
    order, awaiting awaitables, and return the first value that is not None."""
    for impl in _call_order(hook, kwargs):
        value = await _await_if_needed(_call(impl, kwargs))
        if value is not None:
            return value
    return None


# Tasks started by `notify`, kept referenced until they finish.
_background: set[asyncio.Future[Any]] = set()


def _make_reporter(plugin: str, hook: str) -> Callable[[asyncio.Future[Any]], None]:
    def report(task: asyncio.Future[Any]) -> None:
        _background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("plugin %s: %s failed", plugin, hook, exc_info=task.exception())

    return report


def _call_order(hook: pluggy.HookCaller, kwargs: dict[str, Any]) -> list[pluggy.HookImpl]:
    """The implementations in the order pluggy calls them: tryfirst ones, then the
    most recently registered, then trylast ones."""
    if not isinstance(hook, pluggy.HookCaller):
        raise TypeError(
            "pass the hook itself, as in collect(pm.hook.register_routes, settings=...), "
            f"not {hook!r}"
        )
    if hook.spec is not None:
        missing = [name for name in hook.spec.argnames if name not in kwargs]
        if missing:
            raise TypeError(f"{hook.name} needs the argument(s) {', '.join(missing)}")
    return list(reversed(hook.get_hookimpls()))


def _call(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
    return impl.function(*(kwargs[name] for name in impl.argnames))


async def _await_if_needed(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _run_to_completion(value: Any) -> Any:
    """Resolve an awaitable from synchronous code: on this thread when no event loop
    runs here, else on a private loop in a helper thread (the caller waits)."""
    if not inspect.isawaitable(value):
        return value
    coroutine = _as_coroutine(value)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _as_coroutine(value: Awaitable[Any]) -> Coroutine[Any, Any, Any]:
    if inspect.iscoroutine(value):
        return value

    async def wait() -> Any:
        return await value

    return wait()
