"""The runtime: everything one donjon process shares, built from settings and plugins."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from donjon.core.database import Database
from donjon.core.errors import ConfigError, PluginError
from donjon.core.events import EventRegistry, StoredEvent
from donjon.core.eventstore.store import EventStore
from donjon.core.http.instances import InstanceDirectory
from donjon.core.http.readiness import Readiness
from donjon.core.identity.passwords import PasswordHasher
from donjon.core.keys import KeyStore
from donjon.core.metrics import Metrics
from donjon.core.plugins import (
    DonjonPluginManager,
    collect,
    get_plugin_manager,
    notify,
    plugin_settings,
)
from donjon.core.projections.base import Projection
from donjon.core.projections.event_hooks import EventHookRunner
from donjon.core.projections.inline import InlineProjections
from donjon.core.projections.runner import ProjectionRunner
from donjon.core.settings import Settings
from donjon.core.setup.migrations import Migration

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    pm: DonjonPluginManager
    db: Database
    registry: EventRegistry
    store: EventStore
    projections: list[Projection]
    plugin_settings: dict[str, Any]
    keys: KeyStore | None = None
    runner: ProjectionRunner = field(init=False)
    event_hooks: EventHookRunner = field(init=False)
    instances: InstanceDirectory = field(init=False)
    metrics: Metrics = field(init=False)
    readiness: Readiness = field(init=False)
    passwords: PasswordHasher = field(init=False)

    def __post_init__(self) -> None:
        self.runner = ProjectionRunner(
            self.db, self.store, self.projections, self.settings.Projections
        )
        self.event_hooks = EventHookRunner(self)
        self.instances = InstanceDirectory(self.db)
        self.metrics = Metrics()
        self.readiness = Readiness(self)
        self.passwords = PasswordHasher(self.settings.SystemDefaults.PasswordHasher.Hasher)
        self.store.inline_handlers.append(InlineProjections(self.projections))
        for listener in (
            self.runner.notify,
            self.event_hooks.notify,
            self.instances.observe,
            self.metrics.observe_push,
            self._announce,
        ):
            self.store.listeners.append(listener)

    def _announce(self, events: list[StoredEvent]) -> None:
        notify(self.pm.hook.on_events_pushed, events=events)

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)

    def migrations(self) -> list[Migration]:
        from donjon.core.setup.steps import core_migrations

        return [
            *core_migrations(self),
            *collect(self.pm.hook.register_migrations, settings=self.settings),
        ]

    async def close(self) -> None:
        await self.db.dispose()


def build_runtime(
    settings: Settings,
    *,
    pm: DonjonPluginManager | None = None,
    masterkey: bytes | None = None,
    db: Database | None = None,
) -> Runtime:
    """Load plugins and wire the store, projections and keys (no I/O yet)."""
    pm = pm or get_plugin_manager(settings)
    registry = EventRegistry()
    for cls in collect(pm.hook.register_event_types):
        registry.register(cls)
    projections: list[Projection] = collect(pm.hook.register_projections, settings=settings)
    names = [p.name for p in projections]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise PluginError(f"projections registered twice: {', '.join(sorted(duplicates))}")
    lowered = {n.lower() for n in names}
    for name in settings.Projections.Customizations:
        if name.lower() not in lowered:
            raise ConfigError(
                f"Projections.Customizations.{name}: no projection is named {name!r}"
                f" (projections: {', '.join(sorted(names))})"
            )
    db = db or Database.from_settings(settings.Database)
    store = EventStore(db, registry, max_retries=settings.Eventstore.MaxRetries)
    return Runtime(
        settings=settings,
        pm=pm,
        db=db,
        registry=registry,
        store=store,
        projections=projections,
        plugin_settings=plugin_settings(pm, settings),
        keys=KeyStore(db, masterkey) if masterkey else None,
    )
