"""The core plugin: the instance aggregate, setup records and their projections."""

from __future__ import annotations

from typing import Any

from donjon.core import instance
from donjon.core.plugins import hookimpl
from donjon.core.setup import migrations


@hookimpl
def register_event_types() -> list[Any]:
    return [*instance.EVENT_TYPES, *migrations.EVENT_TYPES]


@hookimpl
def register_projections() -> list[Any]:
    return [instance.InstancesProjection()]


@hookimpl(trylast=True)
def resolve_instance(host: str, runtime: Any) -> Any:
    """The instance whose domain is the request's host."""
    return runtime.instances.by_host(host)
