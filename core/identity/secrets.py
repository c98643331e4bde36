"""Machine-generated secrets: client secrets, personal access tokens, codes.

They carry 256 bits from the OS's CSPRNG and are stored only as SHA-256
digests, so checking one costs microseconds (a password hash is for low-entropy
secrets people choose). The plain value is shown once, when it is made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits


def new_secret() -> str:
    """A fresh secret: 32 random bytes, URL-safe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def digest(secret: str) -> str:
    """The stored form of `secret`: its SHA-256, hex-encoded."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Whether `secret` is the one whose digest is stored (constant-time compare)."""
    return hmac.compare_digest(digest(secret), stored_digest)
