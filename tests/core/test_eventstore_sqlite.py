"""The event store contract on SQLite (aiosqlite), the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

from donjon.core.database import Database
from donjon.core.errors import ConfigError
from tests.core.eventstore_contract import EventStoreContract


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def db(self, tmp_path: Path) -> Database:
        return Database.sqlite(tmp_path / "events.db")


@pytest.mark.parametrize("path", [":memory:", ""])
def test_an_in_memory_sqlite_database_is_refused_with_the_key_name(path: str) -> None:
    with pytest.raises(ConfigError, match="Database.sqlite.Path"):
        Database.sqlite(path)
