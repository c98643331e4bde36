"""Password hashing: argon2id for new hashes, bcrypt verified for imported ones.

Hashing is deliberately slow and memory-hungry, so it runs in worker threads
(argon2-cffi and bcrypt release the GIL) and at most
`SystemDefaults.PasswordHasher.Hasher.MaxConcurrent` at once per process:
fifty parallel logins must not take fifty times the hash's memory.

A hash made with other parameters than the configured ones, or an imported
bcrypt hash, verifies as usual and reports `needs_rehash`, so the login that
proved the password can store a fresh argon2id hash of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import bcrypt
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from donjon.core.settings import PasswordHashSettings

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
ARGON2_PREFIX = "$argon2"


class UnsupportedHashError(ValueError):
    """An imported hash in a format donjon cannot verify."""


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # True when the password was right but its hash should be replaced.
    needs_rehash: bool = False


def is_supported_hash(encoded: str) -> bool:
    """Whether `encoded` is a hash donjon can verify (argon2 PHC or bcrypt)."""
    return encoded.startswith(BCRYPT_PREFIXES) or encoded.startswith(ARGON2_PREFIX)


class PasswordHasher:
    """Hashes and verifies passwords with the configured cost, concurrency-bounded."""

    def __init__(self, settings: PasswordHashSettings) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=settings.Time,
            memory_cost=settings.Memory,
            parallelism=settings.Threads,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(settings.MaxConcurrent)

    async def hash(self, password: str) -> str:
        """An argon2id PHC string of `password`."""
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, encoded: str, password: str) -> Verification:
        """Check `password` against a stored argon2 or bcrypt hash.

        Raises UnsupportedHashError for any other format (an import should
        have refused it).
        """
        async with self._slots:
            return await asyncio.to_thread(self.verify_sync, encoded, password)

    def verify_sync(self, encoded: str, password: str) -> Verification:
        if encoded.startswith(BCRYPT_PREFIXES):
            try:
                ok = bcrypt.checkpw(password.encode(), encoded.encode())
            except ValueError as exc:
                raise UnsupportedHashError(f"malformed bcrypt hash: {exc}") from None
            return Verification(ok, needs_rehash=ok)
        if encoded.startswith(ARGON2_PREFIX):
            try:
                self._argon2.verify(encoded, password)
            except VerifyMismatchError:
                return Verification(False)
            except (VerificationError, InvalidHashError) as exc:
                raise UnsupportedHashError(f"malformed argon2 hash: {exc}") from None
            return Verification(True, needs_rehash=self._argon2.check_needs_rehash(encoded))
        raise UnsupportedHashError("unsupported password hash format")
