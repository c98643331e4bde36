"""Server-provided DPoP nonces (RFC 9449 §8 at the token endpoint, §9 at resource endpoints).

With `RequireDPoPNonce`, every proof must carry a nonce the server made;
a proof without one, or with a stale one, is refused with `use_dpop_nonce`
and a fresh nonce in the `DPoP-Nonce` header, which the client puts in a new
proof (openid-client and other RFC 9449 clients retry on their own). Every
answer to a request with a proof also carries the current nonce, so a client
that keeps it never needs the extra round trip.

Nonces are stateless: the HMAC-SHA-256 (master key purpose `dpopNonce`, the
same in every process) of the instance id and the current period of
`NONCE_PERIOD`. A nonce is accepted during its period and the next one, so
it is good for between one and two periods, and a nonce of one instance is
never one of another's.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING

from donjon.plugins.oidc.dpop.proof import b64url

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

PURPOSE = "dpopNonce"
#: Seconds a nonce period lasts.
NONCE_PERIOD = 300
RESPONSE_HEADER = "DPoP-Nonce"


async def _nonce_at(runtime: Runtime, instance_id: str, period: int) -> str:
    if runtime.keys is None:
        raise RuntimeError("DPoP nonces need the master key (runtime.keys)")
    key = await runtime.keys.purpose_key(PURPOSE)
    mac = hmac.new(key, f"{instance_id}:{period}".encode(), hashlib.sha256).digest()
    return b64url(mac[:24])


def _period(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // NONCE_PERIOD)


async def current_nonce(runtime: Runtime, instance_id: str) -> str:
    """The nonce to hand out now."""
    return await _nonce_at(runtime, instance_id, _period())


async def is_fresh_nonce(runtime: Runtime, instance_id: str, nonce: str | None) -> bool:
    """Whether `nonce` was made for this instance in this period or the one before."""
    if not nonce:
        return False
    period = _period()
    for p in (period, period - 1):
        if hmac.compare_digest(nonce, await _nonce_at(runtime, instance_id, p)):
            return True
    return False
