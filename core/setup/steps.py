"""The core's setup steps, in order: projection (re)builds, then the first instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from donjon.core.instance import add_domain, instance_domains_table, list_instances
from donjon.core.projections.base import Projection
from donjon.core.projections.rebuild import needs_rebuild, rebuild
from donjon.core.projections.state import get_state
from donjon.core.setup.first_instance import create_first_instance
from donjon.core.setup.migrations import Migration, StepContext

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

CREATOR = "SYSTEM"


def projection_step(projection: Projection) -> Migration:
    """Build a projection the first time, and rebuild it whenever its version changes."""

    async def due(runtime: Runtime) -> bool:
        async with runtime.db.read() as conn:
            return needs_rebuild(projection, await get_state(conn, projection.name))

    async def execute(ctx: StepContext) -> dict[str, Any]:
        runtime = ctx.runtime
        if not await due(runtime):
            # Taken over from a process killed after its rebuild finished but
            # before the step was recorded done: nothing left to replay.
            return {"version": projection.version, "events": 0}
        result = await rebuild(
            runtime.db,
            runtime.store,
            projection,
            bulk_limit=runtime.settings.Projections.rebuild_bulk_limit(projection.name),
            progress=ctx.report,
        )
        return {"version": projection.version, "events": result.events}

    return Migration(
        f"projection.{projection.name}",
        execute,
        rerun_when=due,
        description=f"build the {projection.name} projection (v{projection.version})",
    )


async def _external_domain_missing(runtime: Runtime) -> bool:
    async with runtime.db.read() as conn:
        instances = await list_instances(conn)
        if not instances:
            return False
        row = (
            await conn.execute(
                select(instance_domains_table.c.instance_id).where(
                    instance_domains_table.c.domain == runtime.settings.ExternalDomain.lower()
                )
            )
        ).first()
    return row is None


async def _external_domain(ctx: StepContext) -> dict[str, Any]:
    """Give the first instance the configured ExternalDomain when it changed."""
    runtime = ctx.runtime
    if not await _external_domain_missing(runtime):
        return {"domain": runtime.settings.ExternalDomain, "added": False}
    async with runtime.db.read() as conn:
        first = (await list_instances(conn))[0]
    await runtime.store.push(
        add_domain(str(first["id"]), runtime.settings.ExternalDomain), creator=CREATOR
    )
    return {"domain": runtime.settings.ExternalDomain, "added": True}


def core_migrations(runtime: Runtime) -> list[Migration]:
    inline = [p for p in runtime.projections if p.inline]
    later = [p for p in runtime.projections if not p.inline]
    return [
        *(projection_step(p) for p in inline),
        Migration(
            "first_instance",
            create_first_instance,
            description="create the first instance, its org and administrators from FirstInstance",
        ),
        Migration(
            "external_domain",
            _external_domain,
            rerun_when=_external_domain_missing,
            description="add ExternalDomain to the first instance when it changed",
        ),
        *(projection_step(p) for p in later),
    ]
