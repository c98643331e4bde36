"""What a setup step is, and the events that record its runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from donjon.core.events import Event

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

SYSTEM_AGGREGATE = "system"
SYSTEM_INSTANCE = ""


@dataclass(frozen=True)
class MigrationStarted(Event):
    TYPE = "system.migration.started"
    AGGREGATE_TYPE = SYSTEM_AGGREGATE
    name: str
    holder: str = ""


@dataclass(frozen=True)
class MigrationDone(Event):
    TYPE = "system.migration.done"
    AGGREGATE_TYPE = SYSTEM_AGGREGATE
    name: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MigrationFailed(Event):
    TYPE = "system.migration.failed"
    AGGREGATE_TYPE = SYSTEM_AGGREGATE
    name: str
    error: str = ""


EVENT_TYPES: list[type[Event]] = [MigrationStarted, MigrationDone, MigrationFailed]


@dataclass
class StepContext:
    """What a running step gets: the runtime and a way to report progress."""

    runtime: Runtime
    name: str
    report: Callable[[int, int], None]


@dataclass(frozen=True)
class Migration:
    """One setup step.

    `execute` must be safe to run again after an interruption at any await
    (resume or redo; never double-apply). A step runs once; with `rerun_when`
    it is repeatable and runs again whenever that returns true.
    `info`, when given, is recorded in the step's `done` event.
    """

    name: str
    execute: Callable[[StepContext], Awaitable[dict[str, Any] | None]]
    rerun_when: Callable[[Runtime], Awaitable[bool]] | None = None
    description: str = ""
