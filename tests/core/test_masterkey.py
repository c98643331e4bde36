"""The master key: where it comes from, its length, and that a store keeps the key
it was set up with."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from donjon.core.database import Database
from donjon.core.errors import MasterKeyError
from donjon.core.keys import KeyStore, load_masterkey, read_masterkey
from donjon.core.setup.init import create_tables
from tests.conftest import MASTERKEY, sqlite_database
from tests.core.test_setup_support import donjon, free_port, prepared_runtime, write_config

FLAG_KEY = "f" * 32
FILE_KEY = b"k" * 32
ENV_KEY = "e" * 32
OTHER_KEY = "0" * 32


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "masterkey"
    path.write_bytes(FILE_KEY)
    return path


def test_the_flag_wins_over_the_file_which_wins_over_the_environment(key_file: Path) -> None:
    env = {"DONJON_MASTERKEY": ENV_KEY}
    assert read_masterkey(FLAG_KEY, str(key_file), env) == (FLAG_KEY.encode(), "--masterkey")
    assert read_masterkey(None, str(key_file), env) == (FILE_KEY, f"--masterkeyFile {key_file}")
    assert read_masterkey(None, None, env) == (ENV_KEY.encode(), "DONJON_MASTERKEY")
    assert load_masterkey(None, None, env) == ENV_KEY.encode()


def test_one_trailing_newline_in_the_key_file_is_ignored(tmp_path: Path) -> None:
    for ending in (b"\n", b"\r\n"):
        path = tmp_path / "key"
        path.write_bytes(FILE_KEY + ending)
        assert load_masterkey(None, str(path), {}) == FILE_KEY


@pytest.mark.parametrize(
    ("flag", "file_content", "env", "message"),
    [
        ("short", None, {}, "--masterkey: expected a master key of exactly 32 bytes, got 5"),
        (
            None,
            b"x" * 33,
            {},
            "--masterkeyFile {file}: expected a master key of exactly 32 bytes, got 33",
        ),
        (
            None,
            None,
            {"DONJON_MASTERKEY": "é" * 16 + "x"},
            "DONJON_MASTERKEY: expected a master key of exactly 32 bytes, got 33",
        ),
    ],
)
def test_a_key_of_the_wrong_length_is_refused_naming_its_source(
    tmp_path: Path, flag: str | None, file_content: bytes | None, env: dict[str, str], message: str
) -> None:
    file = None
    if file_content is not None:
        file = tmp_path / "key"
        file.write_bytes(file_content)
    with pytest.raises(MasterKeyError) as caught:
        load_masterkey(flag, str(file) if file else None, env)
    assert str(caught.value) == message.format(file=file)


def test_no_key_at_all_says_where_one_may_come_from() -> None:
    with pytest.raises(
        MasterKeyError, match="pass --masterkey, --masterkeyFile or set DONJON_MASTERKEY"
    ):
        load_masterkey(None, None, {})


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MasterKeyError, match=f"--masterkeyFile: cannot read {missing}"):
        load_masterkey(None, str(missing), {})


@pytest.mark.anyio
async def test_a_store_keeps_the_key_it_was_first_used_with(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "donjon.db")
    try:
        await create_tables(db)
        await KeyStore(db, MASTERKEY).verify()
        await KeyStore(db, MASTERKEY).verify()
        with pytest.raises(
            MasterKeyError, match="does not match the one this database was set up with"
        ):
            await KeyStore(db, OTHER_KEY.encode()).verify()
        sealed = await KeyStore(db, MASTERKEY).encrypt("userKey", b"secret")
        assert await KeyStore(db, MASTERKEY).decrypt("userKey", sealed) == b"secret"
    finally:
        await db.dispose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_processes_starting_together_on_a_fresh_store_agree_on_one_key_and_purpose_keys(
    pg_dsn: str,
) -> None:
    databases = [Database.postgres(pg_dsn) for _ in range(4)]
    try:
        await create_tables(databases[0])
        for db in databases:  # connected already, so their first reads overlap
            await db.ping()
        keys = [MASTERKEY, OTHER_KEY.encode(), MASTERKEY, OTHER_KEY.encode()]
        results = await asyncio.gather(
            *(KeyStore(db, key).verify() for db, key in zip(databases, keys, strict=True)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, MasterKeyError)]
        assert len(refused) == 2 and results.count(None) == 2, results
        accepted = [key for key, result in zip(keys, results, strict=True) if result is None]
        purpose_keys = await asyncio.gather(
            *(KeyStore(db, accepted[0]).purpose_key("userKey") for db in databases)
        )
        assert len(set(purpose_keys)) == 1  # created once, whoever asked first
    finally:
        for db in databases:
            await db.dispose()


@pytest.mark.slow
@pytest.mark.anyio
async def test_setup_and_start_refuse_another_master_key_with_a_clear_message(
    tmp_path: Path,
) -> None:
    database = sqlite_database(tmp_path / "donjon.db")
    await (await prepared_runtime(database)).close()  # set up with MASTERKEY
    config = str(write_config(tmp_path / "donjon.yaml", database))
    short_file = tmp_path / "short"
    short_file.write_text("12345\n")
    runs = {
        "setup --masterkey": (("setup", "--config", config, "--masterkey", OTHER_KEY), {}),
        "start DONJON_MASTERKEY": (
            ("start", "--config", config),
            {"DONJON_MASTERKEY": OTHER_KEY, "DONJON_PORT": str(free_port())},
        ),
        "start-from-setup --masterkeyFile": (
            ("start-from-setup", "--config", config, "--masterkeyFile", str(short_file)),
            {"DONJON_PORT": str(free_port())},
        ),
    }

    def run(item: tuple[tuple[str, ...], dict[str, str]]) -> tuple[int, str]:
        args, env = item
        return donjon(tmp_path, *args, env=env, timeout=30)

    with ThreadPoolExecutor(len(runs)) as pool:
        results = dict(
            zip(
                runs,
                await asyncio.to_thread(lambda: list(pool.map(run, runs.values()))),
                strict=True,
            )
        )

    mismatch = "the master key does not match the one this database was set up with"
    status, output = results["setup --masterkey"]
    assert (status, output.strip()) == (
        1,
        f"donjon: --masterkey: {mismatch}; start donjon with the original key",
    )
    status, output = results["start DONJON_MASTERKEY"]
    assert status == 1 and f"donjon: DONJON_MASTERKEY: {mismatch}" in output, output
    assert "serving on" not in output
    status, output = results["start-from-setup --masterkeyFile"]
    assert (status, output.strip()) == (
        1,
        f"donjon: --masterkeyFile {short_file}: expected a master key of exactly 32 bytes, got 5",
    )
