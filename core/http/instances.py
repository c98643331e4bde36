"""Which instance a host serves, cached for a few seconds per process.

Domains change rarely; a change pushed in this process clears the cache at
once, one pushed elsewhere is seen within `TTL` seconds (an unknown host is
looked up again after `MISS_TTL`). Hosts come from clients, so the cache is
bounded: past `MAX_ENTRIES` the expired entries go, then the oldest.
"""

from __future__ import annotations

import time

from donjon.core.database import Database
from donjon.core.events import StoredEvent
from donjon.core.instance import instance_by_domain

TTL = 5.0
MISS_TTL = 1.0
MAX_ENTRIES = 10_000


class InstanceDirectory:
    """Maps hosts to instance ids from the `instance_domains` read model."""

    def __init__(self, db: Database, *, max_entries: int = MAX_ENTRIES) -> None:
        self.db = db
        self.max_entries = max_entries
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def by_host(self, host: str) -> str | None:
        """The id of the instance with domain `host` (lower-cased, no port), or None.

        Raises what the database raises when it cannot be read.
        """
        hit = self._cache.get(host)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self.db.read() as conn:
            instance_id = await instance_by_domain(conn, host)
        if len(self._cache) >= self.max_entries:
            self._evict(now)
        self._cache[host] = (instance_id, now + (TTL if instance_id else MISS_TTL))
        return instance_id

    def observe(self, events: list[StoredEvent]) -> None:
        """Forget every answer when this process pushed an instance event (push listener)."""
        if any(e.type.startswith("instance.") for e in events):
            self._cache.clear()

    def _evict(self, now: float) -> None:
        for host in [h for h, (_, expires) in self._cache.items() if expires <= now]:
            del self._cache[host]
        # Dicts keep insertion order: the first entries are the oldest.
        excess = len(self._cache) - self.max_entries + 1
        for host in list(self._cache)[: max(excess, 0)]:
            del self._cache[host]
