"""Request signatures: `Donjon-Signature: t=<unix>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`.

Every request donjon sends to a target carries the header, computed with the
target's signing key over the Unix time and the raw body. While a rotated key
is still valid, the header carries one `v1=` per key (the new key first).

Receivers check it with `verify_signature` (this module needs only the
standard library, so a receiver may copy it):

    from donjon.actions.signing import verify_signature, SignatureError

    try:
        verify_signature(raw_body, request.headers["Donjon-Signature"], SIGNING_KEY)
    except SignatureError:
        return 400

A signature older (or newer) than `tolerance` seconds (300 by default) is
refused, so a recorded request cannot be replayed later; the payload's
`eventId` lets a receiver drop the repeats that at-least-once delivery may
bring within that window.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

HEADER = "Donjon-Signature"
DEFAULT_TOLERANCE = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale, or matches no key."""


def compute(key: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `key`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, keys: Iterable[str], timestamp: int | None = None) -> str:
    """The header value for `body` signed with every key in `keys` (at least one)."""
    t = int(time.time()) if timestamp is None else timestamp
    signatures = [f"v1={compute(k, t, body)}" for k in keys]
    if not signatures:
        raise ValueError("no signing key")
    return ",".join([f"t={t}", *signatures])


def verify_signature(
    body: bytes,
    header: str | None,
    key: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a `Donjon-Signature` header against the raw `body` and the target's `key`.

    Returns the signed timestamp. Raises SignatureError when the header is
    missing or malformed, its time is more than `tolerance` seconds away from
    `now`, or no `v1` value matches.
    """
    if not header:
        raise SignatureError(f"no {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the signature's t is not a Unix time") from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {HEADER} header: expected t=...,v1=...")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"the signature is more than {tolerance}s old (or in the future)")
    expected = compute(key, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches the key")
    return timestamp
