"""The plugin's setup steps."""

from __future__ import annotations

from typing import Any

from donjon.core.setup.migrations import Migration, StepContext
from donjon.plugins.oidc import replay


async def create_tables(ctx: StepContext) -> dict[str, Any]:
    await replay.create_tables(ctx.runtime.db)
    return {"tables": sorted(replay.oidc_metadata.tables)}


MIGRATIONS = [
    Migration("oidc.tables", create_tables, description="create the OIDC plugin's own tables")
]
