"""Whether this process may take traffic: the database answers and setup is complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime


class Readiness:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._setup_complete = False

    async def problems(self) -> list[str]:
        try:
            await self.runtime.db.ping()
        except Exception as exc:
            return [f"database unreachable: {type(exc).__name__}: {exc}"]
        if self._setup_complete:
            return []
        from donjon.core.setup.runner import SetupRunner

        try:
            pending = await SetupRunner(self.runtime).pending()
        except Exception as exc:
            return [f"setup state unreadable (has `donjon init` run?): {type(exc).__name__}"]
        if pending:
            return [f"setup step not done: {name}" for name in pending]
        # Once complete, setup only changes with a new version (a restart).
        self._setup_complete = True
        return []
