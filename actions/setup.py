"""The plugin's setup steps."""

from __future__ import annotations

from typing import Any

from donjon.actions import outbox
from donjon.core.setup.migrations import Migration, StepContext


async def create_tables(ctx: StepContext) -> dict[str, Any]:
    await outbox.create_tables(ctx.runtime.db)
    return {"tables": sorted(outbox.actions_metadata.tables)}


MIGRATIONS = [
    Migration("actions.tables", create_tables, description="create the outbox of event executions")
]
