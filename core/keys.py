"""The master key and the per-purpose keys it protects.

The master key (exactly 32 bytes, from --masterkey, --masterkeyFile or
DONJON_MASTERKEY) never touches the database. It encrypts (AES-256-GCM) one
random key per purpose (`userKey`, `oidcKey`, …) kept in `encryption_keys`,
and a check value written on first setup, so a process started with another
master key stops at once instead of failing to decrypt later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from donjon.core.database import Database
from donjon.core.errors import MasterKeyError
from donjon.core.eventstore.schema import encryption_keys

MASTERKEY_LENGTH = 32
_CHECK_ID = "masterkey.check"
_CHECK_PLAINTEXT = b"donjon master key check"


def load_masterkey(
    value: str | None, file: str | None, env: Mapping[str, str] | None = None
) -> bytes:
    """The master key from the flag, else the file, else DONJON_MASTERKEY (see read_masterkey)."""
    return read_masterkey(value, file, env)[0]


def read_masterkey(
    value: str | None, file: str | None, env: Mapping[str, str] | None = None
) -> tuple[bytes, str]:
    """The master key and where it came from: `--masterkey` when given, else the
    file of `--masterkeyFile` (one trailing newline ignored), else the variable
    DONJON_MASTERKEY of `env` (os.environ when None).

    Raises MasterKeyError naming the source when the key is not exactly 32
    bytes, the file cannot be read, or no source gives a key.
    """
    env = os.environ if env is None else env
    if value:
        raw, source = value.encode(), "--masterkey"
    elif file:
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            raise MasterKeyError(f"--masterkeyFile: cannot read {file}: {exc.strerror}") from exc
        raw, source = raw.removesuffix(b"\n").removesuffix(b"\r"), f"--masterkeyFile {file}"
    elif env.get("DONJON_MASTERKEY"):
        raw, source = env["DONJON_MASTERKEY"].encode(), "DONJON_MASTERKEY"
    else:
        raise MasterKeyError(
            "no master key: pass --masterkey, --masterkeyFile or set DONJON_MASTERKEY (32 bytes)"
        )
    if len(raw) != MASTERKEY_LENGTH:
        raise MasterKeyError(
            f"{source}: expected a master key of exactly {MASTERKEY_LENGTH} bytes, got {len(raw)}"
        )
    return raw, source


class KeyStore:
    def __init__(self, db: Database, masterkey: bytes) -> None:
        self.db = db
        self._aead = AESGCM(masterkey)
        self._cache: dict[str, bytes] = {}

    def _seal(self, plaintext: bytes, label: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, label.encode())

    def _open(self, sealed: bytes, label: str) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], label.encode())

    async def verify(self) -> None:
        """Check the master key against the store, recording it on the store's first use.

        Raises MasterKeyError when the store was set up with another master key.
        Of several processes starting on a fresh store at once, the first
        records its key and every other one is checked against it.
        """
        try:
            check = await self._stored_or_new(_CHECK_ID, _CHECK_PLAINTEXT)
        except InvalidTag:
            check = None
        if check != _CHECK_PLAINTEXT:
            raise MasterKeyError(
                "the master key does not match the one this database was set up with;"
                " start donjon with the original key"
            )

    async def purpose_key(self, purpose: str) -> bytes:
        """The 32-byte key for `purpose`, created on first use (the same in every
        process: of two creating it at once, both use the one stored first)."""
        if purpose not in self._cache:
            fresh = AESGCM.generate_key(bit_length=256)
            self._cache[purpose] = await self._stored_or_new(f"purpose.{purpose}", fresh)
        return self._cache[purpose]

    async def _stored_or_new(self, key_id: str, value: bytes) -> bytes:
        """The plaintext stored under `key_id`, storing `value` sealed when there is none.

        The insert does nothing when another process stored one first; what is
        returned is always what the store holds. Raises InvalidTag when it was
        sealed with another master key.
        """
        query = select(encryption_keys.c.value).where(encryption_keys.c.id == key_id)
        async with self.db.write() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(
                    encryption_keys
                )
                sealed = self._seal(value, key_id)
                await conn.execute(ins.values(id=key_id, value=sealed).on_conflict_do_nothing())
                row = (await conn.execute(query)).first()
        assert row is not None
        return self._open(row[0], key_id)

    async def encrypt(self, purpose: str, plaintext: bytes) -> bytes:
        aead = AESGCM(await self.purpose_key(purpose))
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, plaintext, purpose.encode())

    async def decrypt(self, purpose: str, sealed: bytes) -> bytes:
        aead = AESGCM(await self.purpose_key(purpose))
        return aead.decrypt(sealed[:12], sealed[12:], purpose.encode())
