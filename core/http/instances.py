"""Which instance a host serves, cached for a few seconds per process.

Domains change rarely; a change pushed in this process clears the cache at
once, one pushed elsewhere is seen within `TTL` seconds.
"""

from __future__ import annotations

import time

from donjon.core.database import Database
from donjon.core.events import StoredEvent
from donjon.core.instance import instance_by_domain

TTL = 5.0
MISS_TTL = 1.0


class InstanceDirectory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def by_host(self, host: str) -> str | None:
        hit = self._cache.get(host)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self.db.read() as conn:
            instance_id = await instance_by_domain(conn, host)
        self._cache[host] = (instance_id, now + (TTL if instance_id else MISS_TTL))
        return instance_id

    def observe(self, events: list[StoredEvent]) -> None:
        if any(e.type.startswith("instance.") for e in events):
            self._cache.clear()
