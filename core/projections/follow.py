"""The loop that keeps one follower of the store (a projection, an `on_event`
subscriber) caught up: at once, whenever it is woken, periodically, and when a
failed event's retry falls due."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


async def follow(
    label: str,
    wake: asyncio.Event,
    catch_up: Callable[[], Awaitable[Any]],
    every: float,
    retry_at: Callable[[], datetime | None],
) -> None:
    """Run `catch_up` until cancelled: now, then each time `wake` is set, at least every
    `every` seconds, and when `retry_at()` (a failed event's next try) is due. A
    failing round is logged under `label` and tried again at the next of those."""
    while True:
        wake.clear()
        try:
            await catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: batch failed; retrying", label)
        timeout = every
        due = retry_at()
        if due is not None:
            # Retry a failed event when it is due, not at the next periodic look.
            timeout = min(every, max((due - datetime.now(UTC)).total_seconds(), 0.0) + 0.01)
        try:
            await asyncio.wait_for(wake.wait(), timeout=timeout)
        except TimeoutError:
            pass
