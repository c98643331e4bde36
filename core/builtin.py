"""The core plugin: the instance aggregate, setup records and their projections.

It is registered like any other plugin (name `core`, essential: it cannot be
disabled).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from donjon.core import hookimpl, instance
from donjon.core.events import Event
from donjon.core.projections.base import Projection
from donjon.core.setup import migrations

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime


@hookimpl
def register_event_types() -> list[type[Event]]:
    return [*instance.EVENT_TYPES, *migrations.EVENT_TYPES]


@hookimpl
def register_projections() -> list[Projection]:
    return [instance.InstancesProjection()]


@hookimpl(trylast=True)
def resolve_instance(host: str, runtime: Runtime) -> Awaitable[str | None]:
    """The instance one of whose domains is the request's host (asked last)."""
    return runtime.instances.by_host(host)
