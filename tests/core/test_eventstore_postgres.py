"""The event store contract on PostgreSQL (asyncpg), the production store.

The tests share one fresh database (the contract's `store` fixture empties it
for each test); without a server they skip, or fail when
DONJON_TEST_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from donjon.core.database import Database
from tests.conftest import create_pg_database, drop_pg_database
from tests.core.eventstore_contract import EventStoreContract

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = create_pg_database()
    try:
        yield dsn
    finally:
        drop_pg_database(dsn)


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def db(self, dsn: str) -> Database:
        return Database.postgres(dsn)
