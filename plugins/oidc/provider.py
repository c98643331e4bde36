"""The OpenID Provider of one process: its settings and key ring, per runtime.

Hook implementations and route handlers get the runtime; `provider_of`
gives the provider built for it (on first use: nothing happens at import).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from donjon.plugins.oidc.keys.ring import KeyRing
from donjon.plugins.oidc.settings import NAME, OIDCSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from donjon.core.runtime import Runtime

# The attribute of the runtime that holds its provider: it lives and dies
# with the runtime (a module-level registry would keep runtimes alive).
_ATTRIBUTE = "_oidc_provider"


@dataclass
class Provider:
    runtime: Runtime
    settings: OIDCSettings
    keys: KeyRing
    #: This process's purge job (`purge.purge_periodically`), while the server runs.
    purge_task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def read(self, conn: AsyncConnection | None = None) -> AsyncIterator[AsyncConnection]:
        """`conn`, a read transaction the caller already holds, or a new one.

        One request's lookups share one transaction: on SQLite a transaction
        (pool checkout, BEGIN, COMMIT) costs about twice a simple query.
        """
        if conn is not None:
            yield conn
            return
        async with self.runtime.db.read() as new:
            yield new


def provider_of(runtime: Runtime) -> Provider:
    """The provider of `runtime`, built on first use."""
    provider: Provider | None = vars(runtime).get(_ATTRIBUTE)
    if provider is None:
        settings = runtime.plugin_settings.get(NAME) or OIDCSettings()
        provider = Provider(runtime, settings, KeyRing(runtime, settings))
        setattr(runtime, _ATTRIBUTE, provider)
    return provider
