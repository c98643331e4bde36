"""Whether this process may take traffic: the database answers and setup is complete."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

# A probe must answer before the orchestrator's own timeout (Kubernetes: 1 s by
# default, usually raised); a database that takes longer counts as away.
CHECK_TIMEOUT = 5.0


class Readiness:
    """What `/debug/ready` reports.

    Setup is read from the store until it is complete once; after that only the
    database is checked (setup changes only with a new donjon version, which
    means a restart).
    """

    def __init__(self, runtime: Runtime, *, timeout: float = CHECK_TIMEOUT) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self._setup_complete = False

    async def problems(self) -> list[str]:
        """Why this process is not ready, one sentence each; empty when ready. Never raises."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.runtime.db.ping()
        except TimeoutError:
            return [f"database unreachable: no answer within {self.timeout:g}s"]
        except Exception as exc:
            return [f"database unreachable: {describe(exc)}"]
        if self._setup_complete:
            return []
        from donjon.core.setup.runner import SetupRunner

        try:
            async with asyncio.timeout(self.timeout):
                pending = await SetupRunner(self.runtime).pending()
        except TimeoutError:
            return [f"setup state unreadable: no answer within {self.timeout:g}s"]
        except Exception as exc:
            return [f"setup state unreadable (has `donjon init` run?): {describe(exc)}"]
        if pending:
            return [f"setup step not done: {name} (run `donjon setup`)" for name in pending]
        self._setup_complete = True
        return []


def describe(exc: BaseException) -> str:
    """`Type: first line of the message`, for the driver's error inside SQLAlchemy's."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    text = f"{type(inner).__name__}: {message}" if message else type(inner).__name__
    return text[:300]
