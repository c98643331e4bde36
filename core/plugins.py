"""The plugin host: builds the pluggy manager, finds plugins, enables and disables them.

Built-in plugins are registered like third-party ones; third-party plugins
come from the entry-point group `donjon.plugins`. Nothing is loaded at import
time: `get_plugin_manager()` is the factory.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points, version
from typing import Any

import pluggy

from donjon.core import hookspecs
from donjon.core.config import parse
from donjon.core.errors import ConfigError, PluginError
from donjon.core.settings import Settings

log = logging.getLogger(__name__)

PROJECT = "donjon"
ENTRY_POINT_GROUP = "donjon.plugins"
hookimpl = pluggy.HookimplMarker(PROJECT)

# Built-in plugins: (name, module, essential). Essential ones cannot be disabled.
BUILTIN_PLUGINS: list[tuple[str, str, bool]] = [
    ("core", "donjon.core.builtin", True),
]


@dataclass(frozen=True)
class SettingsSection:
    """A plugin's configuration schema: `Plugins.<plugin>` is parsed into `schema`."""

    plugin: str
    schema: type


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    source: str  # "builtin" or "entry point <distribution>"
    essential: bool
    enabled: bool


class DonjonPluginManager(pluggy.PluginManager):
    """pluggy's manager plus what `donjon plugins list` shows."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.disabled: dict[str, object] = {}

    def add_plugin(self, plugin: object, info: PluginInfo) -> None:
        if info.name in self.infos:
            raise PluginError(f"two plugins are named {info.name!r}")
        self.register(plugin, name=info.name)
        self.infos[info.name] = info

    def disable(self, name: str) -> None:
        info = self.infos[name]
        if info.essential:
            raise ConfigError(f"Plugins.{name}.Enabled: the {name} plugin is part of the core and cannot be disabled")
        plugin = self.unregister(name=name)
        self.disabled[name] = plugin
        self.infos[name] = PluginInfo(info.name, info.version, info.source, info.essential, False)


def get_plugin_manager(settings: Settings | None = None) -> DonjonPluginManager:
    """Build a plugin manager with every built-in and installed plugin.

    With `settings`, plugins whose `Plugins.<name>.Enabled` is false are
    unregistered; naming an unknown plugin or disabling a core one raises
    ConfigError.
    """
    pm = DonjonPluginManager()
    donjon_version = version("donjon")
    for name, module_name, essential in BUILTIN_PLUGINS:
        pm.add_plugin(import_module(module_name), PluginInfo(name, donjon_version, "builtin", essential, True))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name} ({ep.value}) failed to load: {exc}") from exc
        dist = ep.dist
        pm.add_plugin(
            plugin,
            PluginInfo(
                ep.name,
                dist.version if dist else "unknown",
                f"entry point {dist.name if dist else ep.value}",
                False,
                True,
            ),
        )
    if settings is not None:
        apply_enabled(pm, settings)
    return pm


def apply_enabled(pm: DonjonPluginManager, settings: Settings) -> None:
    for name, section in settings.Plugins.items():
        if name not in pm.infos:
            installed = ", ".join(sorted(pm.infos))
            raise ConfigError(f"Plugins.{name}: no plugin named {name!r} is installed (installed: {installed})")
        enabled = section.get("Enabled", section.get("enabled", section.get("ENABLED", True)))
        if parse(bool, enabled, f"Plugins.{name}.Enabled") is False:
            pm.disable(name)


def plugin_settings(pm: DonjonPluginManager, settings: Settings) -> dict[str, Any]:
    """Parse each plugin's section against the schema it registered."""
    schemas: dict[str, type] = {}
    for section in collect(pm.hook.register_settings()):
        schemas[section.plugin] = section.schema
    parsed: dict[str, Any] = {}
    for name, schema in schemas.items():
        raw = {k: v for k, v in settings.Plugins.get(name, {}).items() if k.lower() != "enabled"}
        parsed[name] = parse(schema, raw, f"Plugins.{name}")
    for name, raw in settings.Plugins.items():
        extra = [k for k in raw if k.lower() != "enabled"]
        if name not in schemas and extra and name in pm.infos and pm.infos[name].enabled:
            raise ConfigError(f"Plugins.{name}.{extra[0]}: unknown key (the {name} plugin has no settings)")
    return parsed


def collect(results: list[list[Any] | None]) -> list[Any]:
    """Concatenate the lists `register_*` hooks return (pluggy calls newest plugin first,
    so the lists are reversed back to registration order)."""
    out: list[Any] = []
    for items in reversed(results):
        out.extend(items or ())
    return out


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def call_all(hook: Callable[..., list[Any]], **kwargs: Any) -> list[Any]:
    """Call a hook and await any awaitable results (for `on_*` hooks)."""
    return [await maybe_await(r) for r in hook(**kwargs)]


async def first_result(hook: pluggy.HookCaller, **kwargs: Any) -> Any:
    """Call a firstresult hook whose implementations may be async: try each in
    pluggy's order and return the first answer that is not None."""
    for impl in reversed(hook.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames}
        value = await maybe_await(impl.function(**args))
        if value is not None:
            return value
    return None
