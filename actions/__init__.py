"""Actions (built-in plugin `actions`): hook implementations only.

See docs/actions.md. Targets and executions (`targets`, `executions`) are
event-sourced per instance and managed through the ActionService
(`action_service`); requests are signed (`signing`) and only reach public
addresses unless allowed (`ssrf`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.core import hookimpl

if TYPE_CHECKING:
    from donjon.core.api.connect import Call
    from donjon.core.events import Event
    from donjon.core.projections.base import Projection
    from donjon.core.runtime import Runtime
    from donjon.core.setup.migrations import Migration


@hookimpl
def register_event_types() -> list[type[Event]]:
    from donjon.actions import executions, targets

    return [*targets.EVENT_TYPES, *executions.EVENT_TYPES]


@hookimpl
def register_projections() -> list[Projection]:
    from donjon.actions.executions import ExecutionsProjection
    from donjon.actions.targets import TargetsProjection

    return [TargetsProjection(), ExecutionsProjection()]


@hookimpl
def register_api_services() -> list[Any]:
    from donjon.actions.action_service import service

    return [service]


@hookimpl
def register_migrations() -> list[Migration]:
    from donjon.actions.setup import MIGRATIONS

    return list(MIGRATIONS)


@hookimpl
async def on_startup(runtime: Runtime) -> None:
    """Start the outbox of event executions (enqueue and deliver loops)."""
    from donjon.actions import worker

    await worker.start(runtime)


@hookimpl
async def on_shutdown(runtime: Runtime) -> None:
    from donjon.actions import worker

    await worker.stop(runtime)


@hookimpl
async def customize_api_request(
    method: str, request: dict[str, Any], call: Call
) -> dict[str, Any] | None:
    """Run the `request` executions bound to this method."""
    from donjon.actions.interception import run_request

    return await run_request(call, method, request)


@hookimpl
async def customize_api_response(
    method: str, request: dict[str, Any], response: dict[str, Any], call: Call
) -> dict[str, Any] | None:
    """Run the `response` executions bound to this method."""
    from donjon.actions.interception import run_response

    return await run_response(call, method, request, response)


@hookimpl
async def customize_token(
    kind: str,
    claims: dict[str, Any],
    user_id: str,
    client_id: str,
    instance_id: str,
    runtime: Runtime,
) -> dict[str, Any] | None:
    """Run the `preaccesstoken` / `preuserinfo` function executions."""
    from donjon.actions.functions import run_function

    return await run_function(runtime, kind, claims, user_id, client_id, instance_id)
