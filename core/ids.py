"""Resource ids: decimal strings that sort by creation time, like ZITADEL's."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_counter = itertools.count(secrets.randbelow(1 << 12))
_lock = threading.Lock()
_node = (os.getpid() ^ secrets.randbits(16)) & 0x3FF


def new_id() -> str:
    """A 63-bit id: 41 bits of milliseconds, 10 bits of process, 12 bits of counter."""
    with _lock:
        seq = next(_counter) & 0xFFF
    ms = int(time.time() * 1000) - _EPOCH_MS
    return str((ms << 22) | (_node << 12) | seq)
