"""The event store's contract: what every backend must do, tested once.

`EventStoreContract` holds the tests; a backend's test module subclasses it
and overrides the `db` fixture with a `Database` of that backend (see
test_eventstore_sqlite.py and test_eventstore_postgres.py). This module is
not collected by itself: its name does not start with ``test_``. The events
and the data are in eventstore_cases.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.database import Database
from donjon.core.errors import ConcurrencyError, UniqueConstraintError, UnknownEventTypeError
from donjon.core.events import AddUnique, AggregateChanges, RemoveUnique, StoredEvent
from donjon.core.eventstore import EventQuery, EventStore
from donjon.core.eventstore.schema import events, unique_constraints
from donjon.core.setup.init import create_tables
from tests.core.eventstore_cases import (
    CRITERIA,
    SEED,
    AccountAudited,
    AccountClosed,
    AccountOpened,
    AccountRenamed,
    AccountRenamedV1,
    ImpostorAccountOpened,
    TeamFormed,
    account,
    contents,
    registry,
    team,
    username,
)


class EventStoreContract:
    """Tests every event store backend passes; subclasses provide `db`."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    @pytest.fixture
    def db(self) -> Database:
        """A database of the backend under test: each backend overrides this.

        It may be shared by the tests of a class: `store` empties it.
        """
        raise NotImplementedError(f"{type(self).__name__} must provide the `db` fixture")

    @pytest.fixture
    async def store(self, db: Database) -> AsyncIterator[EventStore]:
        await create_tables(db)
        async with db.write() as conn:
            await conn.execute(delete(events))
            await conn.execute(delete(unique_constraints))
        try:
            yield EventStore(db, registry())
        finally:
            await db.dispose()

    @pytest.fixture
    async def seeded(self, store: EventStore) -> list[StoredEvent]:
        """Eight events across two instances, both aggregate types, two owners, two creators."""
        for aggregate, evs, creator in SEED:
            await store.push(AggregateChanges(aggregate, evs), creator=creator)
        everything = await store.query(EventQuery())
        assert len({e.created_at for e in everything}) == len(SEED)
        return everything

    # -- registered event types only ------------------------------------------------

    async def test_an_unregistered_event_type_is_refused_and_nothing_is_written(
        self, store: EventStore
    ) -> None:
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        before = await contents(store)
        with pytest.raises(UnknownEventTypeError, match="account.audited"):
            await store.push(
                [
                    AggregateChanges(team(), [TeamFormed("Blue")], unique=[username("blue")]),
                    AggregateChanges(account(), [AccountClosed(), AccountAudited()]),
                ],
                creator="u",
            )
        assert await contents(store) == before

    async def test_a_class_borrowing_a_registered_type_name_is_refused(
        self, store: EventStore
    ) -> None:
        with pytest.raises(UnknownEventTypeError):
            await store.push(
                AggregateChanges(account(), [ImpostorAccountOpened("Ann")]), creator="u"
            )
        assert await contents(store) == ([], [])

    async def test_an_event_for_another_aggregate_type_is_refused_and_nothing_is_written(
        self, store: EventStore
    ) -> None:
        with pytest.raises(ValueError, match="team.formed belongs to aggregate type 'team'"):
            await store.push(
                [
                    AggregateChanges(account("acc-1"), [AccountOpened("Ann")]),
                    AggregateChanges(account("acc-2"), [TeamFormed("Blue")]),
                ],
                creator="u",
            )
        assert await contents(store) == ([], [])

    # -- per-aggregate optimistic concurrency ---------------------------------------

    async def test_a_push_at_the_expected_sequence_appends(self, store: EventStore) -> None:
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")], 0), creator="u")
        stored = await store.push(
            AggregateChanges(account(), [AccountRenamed("Annie"), AccountClosed()], 1), creator="u"
        )
        assert [e.sequence for e in stored] == [2, 3]

    async def test_expected_sequence_zero_only_creates_a_new_aggregate(
        self, store: EventStore
    ) -> None:
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")], 0), creator="u")
        with pytest.raises(ConcurrencyError, match="is at sequence 1, the command expected 0"):
            await store.push(AggregateChanges(account(), [AccountOpened("Ann")], 0), creator="u")

    async def test_a_stale_expected_sequence_raises_concurrency_error_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        await store.push(
            AggregateChanges(account(), [AccountOpened("Ann"), AccountClosed()]), creator="u"
        )
        before = await contents(store)
        with pytest.raises(ConcurrencyError):
            await store.push(
                AggregateChanges(account(), [AccountRenamed("X")], 1, unique=[username("x")]),
                creator="u",
            )
        assert await contents(store) == before

    async def test_a_conflict_on_the_second_aggregate_writes_nothing_for_the_first(
        self, store: EventStore
    ) -> None:
        await store.push(AggregateChanges(team(), [TeamFormed("Blue")]), creator="u")
        await store.push(AggregateChanges(team(), [TeamFormed("Blue again")]), creator="u")
        before = await contents(store)
        with pytest.raises(ConcurrencyError):
            await store.push(
                [
                    AggregateChanges(
                        account(), [AccountOpened("Ann")], 0, unique=[username("ann")]
                    ),
                    AggregateChanges(team(), [TeamFormed("Green")], expected_sequence=1),
                ],
                creator="u",
            )
        assert await contents(store) == before

    async def test_without_expected_sequence_a_push_appends_after_whatever_is_there(
        self, store: EventStore
    ) -> None:
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        await store.push(AggregateChanges(account(), [AccountRenamed("Annie")]), creator="u")
        stored = await store.push(AggregateChanges(account(), [AccountClosed()]), creator="u")
        assert stored[0].sequence == 3
        assert [e.sequence for e in await store.aggregate_events("i1", "account", "acc-1")] == [
            1,
            2,
            3,
        ]

    async def test_an_aggregate_named_twice_in_one_push_continues_its_own_sequence(
        self, store: EventStore
    ) -> None:
        stored = await store.push(
            [
                AggregateChanges(account(), [AccountOpened("Ann")], 0),
                AggregateChanges(team(), [TeamFormed("Blue")]),
                AggregateChanges(account(), [AccountRenamed("Annie")], 1),
            ],
            creator="u",
        )
        assert [(e.aggregate_id, e.sequence) for e in stored] == [
            ("acc-1", 1),
            ("team-1", 1),
            ("acc-1", 2),
        ]

    async def test_concurrent_pushes_at_one_expected_sequence_let_exactly_one_win(
        self, store: EventStore
    ) -> None:
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")

        async def rename(i: int) -> bool:
            try:
                await store.push(
                    AggregateChanges(account(), [AccountRenamed(f"n{i}")], 1), creator="u"
                )
            except ConcurrencyError:
                return False
            return True

        outcomes = await asyncio.gather(*(rename(i) for i in range(8)))
        assert outcomes.count(True) == 1
        assert [e.sequence for e in await store.aggregate_events("i1", "account", "acc-1")] == [
            1,
            2,
        ]

    async def test_concurrent_appends_without_expected_sequence_all_land_in_sequence(
        self, store: EventStore
    ) -> None:
        patient = EventStore(store.db, store.registry, max_retries=20)
        await asyncio.gather(
            *(
                patient.push(AggregateChanges(account(), [AccountRenamed(f"n{i}")]), creator="u")
                for i in range(6)
            )
        )
        stored = await store.aggregate_events("i1", "account", "acc-1")
        assert [e.sequence for e in stored] == [1, 2, 3, 4, 5, 6]

    async def test_push_in_runs_in_the_callers_transaction(self, store: EventStore) -> None:
        class Abort(Exception):
            pass

        with pytest.raises(Abort):
            async with store.db.write() as conn:
                stored = await store.push_in(
                    conn, [AggregateChanges(account(), [AccountOpened("Ann")])], creator="u"
                )
                assert stored[0].position == 1
                assert len(await store.query(EventQuery(), conn=conn)) == 1
                raise Abort
        assert await contents(store) == ([], [])

    async def test_push_decided_decides_each_push_on_every_push_committed_before_it(
        self, store: EventStore
    ) -> None:
        """A cap of four renames holds under eight concurrent pushes: each
        decision sees the renames committed before it, and none commits between."""

        async def rename_below_the_cap(conn: AsyncConnection) -> list[AggregateChanges]:
            seen = len(await store.query(EventQuery(aggregate_ids=("acc-1",)), conn=conn))
            await asyncio.sleep(0.01)  # another push would commit here without the lock
            if seen >= 4:
                return []
            return [AggregateChanges(account(), [AccountRenamed(f"after-{seen}")])]

        heard: list[list[StoredEvent]] = []
        store.listeners.append(heard.append)
        pushed = await asyncio.gather(
            *(store.push_decided(rename_below_the_cap, creator="u") for _ in range(8))
        )
        stored = await store.aggregate_events("i1", "account", "acc-1")
        assert [e.payload["display_name"] for e in stored] == [f"after-{i}" for i in range(4)]
        assert [e.sequence for e in stored] == [1, 2, 3, 4]
        assert sorted(len(p) for p in pushed) == [0, 0, 0, 0, 1, 1, 1, 1]
        assert len(heard) == 4  # listeners hear of the pushes that stored events

    async def test_push_decided_refuses_unique_claims_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        async def claims(conn: AsyncConnection) -> list[AggregateChanges]:
            return [AggregateChanges(account(), [AccountOpened("Ann")], unique=[username("ann")])]

        with pytest.raises(ValueError, match="unique"):
            await store.push_decided(claims, creator="u")
        assert await contents(store) == ([], [])

    # -- unique constraints ---------------------------------------------------------

    async def test_a_taken_unique_value_fails_with_its_message_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        await store.push(
            AggregateChanges(account("acc-1"), [AccountOpened("ann")], unique=[username("ann")]),
            creator="u",
        )
        before = await contents(store)
        with pytest.raises(UniqueConstraintError, match="user name ann is taken") as failure:
            await store.push(
                [
                    AggregateChanges(team(), [TeamFormed("Blue")]),
                    AggregateChanges(
                        account("acc-2"), [AccountOpened("ann")], unique=[username("ann")]
                    ),
                ],
                creator="u",
            )
        assert (failure.value.unique_type, failure.value.unique_field) == ("username", "ann")
        assert await contents(store) == before

    async def test_a_failed_push_releases_the_unique_values_it_claimed(
        self, store: EventStore
    ) -> None:
        await store.push(
            AggregateChanges(account("acc-1"), [AccountOpened("ann")], unique=[username("ann")]),
            creator="u",
        )
        with pytest.raises(UniqueConstraintError):
            await store.push(
                [
                    AggregateChanges(
                        account("acc-2"), [AccountOpened("bea")], unique=[username("bea")]
                    ),
                    AggregateChanges(
                        account("acc-3"), [AccountOpened("ann")], unique=[username("ann")]
                    ),
                ],
                creator="u",
            )
        await store.push(
            AggregateChanges(account("acc-2"), [AccountOpened("bea")], unique=[username("bea")]),
            creator="u",
        )

    async def test_a_value_claimed_twice_in_one_push_fails(self, store: EventStore) -> None:
        with pytest.raises(UniqueConstraintError):
            await store.push(
                [
                    AggregateChanges(
                        account("acc-1"), [AccountOpened("a")], unique=[username("x")]
                    ),
                    AggregateChanges(
                        account("acc-2"), [AccountOpened("b")], unique=[username("x")]
                    ),
                ],
                creator="u",
            )
        assert await contents(store) == ([], [])

    async def test_unique_values_are_compared_case_insensitively(self, store: EventStore) -> None:
        await store.push(
            AggregateChanges(account("acc-1"), [AccountOpened("Ann")], unique=[username("Ann")]),
            creator="u",
        )
        with pytest.raises(UniqueConstraintError) as failure:
            await store.push(
                AggregateChanges(
                    account("acc-2"), [AccountOpened("ANN")], unique=[username("ANN")]
                ),
                creator="u",
            )
        assert failure.value.unique_field == "ANN"
        # Removal matches case-insensitively as well.
        await store.push(
            AggregateChanges(
                account("acc-1"), [AccountClosed()], unique=[RemoveUnique("username", "aNN")]
            ),
            creator="u",
        )
        await store.push(
            AggregateChanges(account("acc-2"), [AccountOpened("ANN")], unique=[username("ANN")]),
            creator="u",
        )

    async def test_removing_a_unique_value_frees_it(self, store: EventStore) -> None:
        await store.push(
            AggregateChanges(account("acc-1"), [AccountOpened("ann")], unique=[username("ann")]),
            creator="u",
        )
        await store.push(
            AggregateChanges(
                account("acc-1"), [AccountClosed()], unique=[RemoveUnique("username", "ann")]
            ),
            creator="u",
        )
        await store.push(
            AggregateChanges(account("acc-2"), [AccountOpened("ann")], unique=[username("ann")]),
            creator="u",
        )
        assert (await contents(store))[1] == [("i1", "username", "ann")]

    async def test_unique_values_are_per_instance_unless_global(self, store: EventStore) -> None:
        domain = AddUnique("domain", "example.com", "domain example.com is taken", is_global=True)
        await store.push(
            AggregateChanges(
                account("acc-1", "i1"), [AccountOpened("ann")], unique=[username("ann"), domain]
            ),
            creator="u",
        )
        # The same user name in another instance is fine ...
        await store.push(
            AggregateChanges(
                account("acc-1", "i2"), [AccountOpened("ann")], unique=[username("ann")]
            ),
            creator="u",
        )
        # ... the same global value is not.
        with pytest.raises(UniqueConstraintError, match="domain example.com is taken"):
            await store.push(
                AggregateChanges(account("acc-2", "i2"), [AccountOpened("x")], unique=[domain]),
                creator="u",
            )
        assert (await contents(store))[1] == [
            ("", "domain", "example.com"),
            ("i1", "username", "ann"),
            ("i2", "username", "ann"),
        ]
        # A global value is removed globally, whichever instance's aggregate removes it.
        await store.push(
            AggregateChanges(
                account("acc-9", "i3"),
                [AccountOpened("z")],
                unique=[RemoveUnique("domain", "EXAMPLE.com", is_global=True)],
            ),
            creator="u",
        )
        assert ("", "domain", "example.com") not in (await contents(store))[1]

    async def test_concurrent_claims_of_one_value_let_exactly_one_win(
        self, store: EventStore
    ) -> None:
        async def claim(i: int) -> bool:
            try:
                await store.push(
                    AggregateChanges(
                        account(f"acc-{i}"), [AccountOpened("ann")], unique=[username("ann")]
                    ),
                    creator="u",
                )
            except UniqueConstraintError:
                return False
            return True

        outcomes = await asyncio.gather(*(claim(i) for i in range(6)))
        assert outcomes.count(True) == 1
        assert len(await store.query(EventQuery())) == 1

    async def test_pushes_claiming_the_same_values_in_opposite_orders_never_deadlock(
        self, store: EventStore
    ) -> None:
        impatient = EventStore(store.db, store.registry, max_retries=0)

        async def claim(aggregate: str, values: list[str]) -> str:
            try:
                await impatient.push(
                    AggregateChanges(
                        account(aggregate), [AccountOpened(aggregate)], unique=map(username, values)
                    ),
                    creator="u",
                )
            except UniqueConstraintError:
                return "taken"
            return "stored"

        for round in range(3):
            x, y = f"x{round}", f"y{round}"
            outcomes = await asyncio.gather(claim(f"a{round}", [x, y]), claim(f"b{round}", [y, x]))
            assert sorted(outcomes) == ["stored", "taken"]

    # -- reading --------------------------------------------------------------------

    @pytest.mark.parametrize("criterion", list(CRITERIA))
    async def test_each_query_criterion_selects_exactly_the_matching_events(
        self, store: EventStore, seeded: list[StoredEvent], criterion: str
    ) -> None:
        query, expected = CRITERIA[criterion](seeded)
        assert expected and expected != seeded, "the case must discriminate"
        got = await store.query(query)
        assert [e.position for e in got] == [e.position for e in expected]
        assert got == expected

    async def test_a_query_reads_inside_a_given_connection(
        self, store: EventStore, seeded: list[StoredEvent]
    ) -> None:
        async with store.db.read() as conn:
            assert await store.query(EventQuery(), conn=conn) == seeded
            assert await store.max_position(conn) == seeded[-1].position

    async def test_aggregate_events_are_one_aggregates_events_in_sequence(
        self, store: EventStore, seeded: list[StoredEvent]
    ) -> None:
        events = await store.aggregate_events("i1", "account", "acc-1")
        assert [(e.sequence, e.type) for e in events] == [
            (1, "account.opened"),
            (2, "account.renamed"),
            (3, "account.closed"),
        ]

    @pytest.mark.parametrize("batch", [1, 3, 8, 100])
    async def test_stream_pages_through_every_matching_event_in_order(
        self, store: EventStore, seeded: list[StoredEvent], batch: int
    ) -> None:
        accounts = [e for e in seeded if e.aggregate_type == "account"]
        query = EventQuery(aggregate_types=("account",))
        assert [e async for e in store.stream(query, batch=batch)] == accounts
        descending = EventQuery(aggregate_types=("account",), descending=True)
        assert [e async for e in store.stream(descending, batch=batch)] == accounts[::-1]

    @pytest.mark.parametrize("limit", [0, 1, 3, 4, 100])
    async def test_stream_stops_at_the_limit_across_pages(
        self, store: EventStore, seeded: list[StoredEvent], limit: int
    ) -> None:
        after = seeded[0].position
        query = EventQuery(position_after=after, limit=limit)
        assert [e async for e in store.stream(query, batch=2)] == seeded[1:][:limit]
        latest = EventQuery(descending=True, limit=limit)
        assert [e async for e in store.stream(latest, batch=2)] == seeded[::-1][:limit]

    async def test_stream_refuses_a_batch_below_one(self, store: EventStore) -> None:
        with pytest.raises(ValueError, match="batch"):
            async for _ in store.stream(EventQuery(), batch=0):
                pass

    # -- positions, sequences, owners, creators -------------------------------------

    async def test_positions_increase_without_gaps_across_and_within_pushes(
        self, store: EventStore
    ) -> None:
        first = await store.push(
            [
                AggregateChanges(account(), [AccountOpened("Ann"), AccountRenamed("Annie")]),
                AggregateChanges(team(), [TeamFormed("Blue")]),
            ],
            creator="u",
        )
        second = await store.push(AggregateChanges(account(), [AccountClosed()]), creator="u")
        assert [e.position for e in first + second] == [1, 2, 3, 4]
        assert await store.query(EventQuery()) == first + second
        assert await store.max_position() == 4

    async def test_a_rolled_back_push_leaves_no_gap_in_positions(self, store: EventStore) -> None:
        class InlineFailure(Exception):
            pass

        async def fail(conn: AsyncConnection, stored: list[StoredEvent]) -> None:
            assert [e.position for e in stored] == [2, 3]  # assigned, never committed
            raise InlineFailure

        await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        store.inline_handlers.append(fail)
        with pytest.raises(InlineFailure):
            await store.push(
                AggregateChanges(team(), [TeamFormed("a"), TeamFormed("b")]), creator="u"
            )
        store.inline_handlers.remove(fail)
        stored = await store.push(AggregateChanges(team(), [TeamFormed("c")]), creator="u")
        assert (stored[0].position, stored[0].sequence) == (2, 1)

    async def test_a_push_the_database_aborts_as_transient_is_rerun_up_to_max_retries(
        self, store: EventStore
    ) -> None:
        class Aborted:
            sqlstate = "40P01"  # deadlock_detected

        runs: list[int] = []

        async def flaky(conn: AsyncConnection, stored: list[StoredEvent]) -> None:
            runs.append(stored[0].position)
            if len(runs) <= failures:
                raise DBAPIError("INSERT ...", None, Aborted())  # type: ignore[arg-type]

        store.inline_handlers.append(flaky)
        store.max_retries = 2
        failures = 2
        await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        assert runs == [1, 1, 1]
        runs.clear()
        failures = 3
        with pytest.raises(DBAPIError):
            await store.push(AggregateChanges(account(), [AccountClosed()]), creator="u")
        assert runs == [2, 2, 2]
        assert len(await store.query(EventQuery())) == 1

    async def test_inline_handlers_see_the_stored_events_inside_the_push_transaction(
        self, store: EventStore
    ) -> None:
        seen: list[list[StoredEvent]] = []

        async def handler(conn: AsyncConnection, stored: list[StoredEvent]) -> None:
            assert await store.query(EventQuery(), conn=conn) == stored
            seen.append(stored)

        store.inline_handlers.append(handler)
        stored = await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        assert seen == [stored]

    async def test_listeners_hear_of_committed_pushes_only(self, store: EventStore) -> None:
        heard: list[list[StoredEvent]] = []
        store.listeners.append(heard.append)
        stored = await store.push(AggregateChanges(account(), [AccountOpened("Ann")]), creator="u")
        with pytest.raises(ConcurrencyError):
            await store.push(AggregateChanges(account(), [AccountClosed()], 0), creator="u")
        await store.push([], creator="u")
        assert heard == [stored]

    async def test_events_keep_the_owner_of_their_aggregates_first_events(
        self, store: EventStore
    ) -> None:
        await store.push(
            AggregateChanges(account(owner="org-a"), [AccountOpened("Ann")]), creator="u"
        )
        later = await store.push(
            AggregateChanges(account(owner="org-z"), [AccountClosed()]), creator="u"
        )
        fresh = await store.push(
            AggregateChanges(account("acc-2", owner="org-z"), [AccountOpened("Bea")]), creator="u"
        )
        assert later[0].owner == "org-a"
        assert fresh[0].owner == "org-z"
        assert {e.owner for e in await store.aggregate_events("i1", "account", "acc-1")} == {
            "org-a"
        }

    async def test_stored_events_carry_creator_type_revision_and_an_aware_utc_time(
        self, store: EventStore
    ) -> None:
        [stored] = await store.push(
            AggregateChanges(account(), [AccountRenamed("Annie")]), creator="user-7"
        )
        [read] = await store.query(EventQuery())
        assert read == stored
        assert (read.creator, read.type, read.revision) == ("user-7", "account.renamed", 2)
        assert read.created_at.utcoffset() is not None
        assert read.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]

    # -- payloads and decoding ------------------------------------------------------

    async def test_a_payload_round_trips_unchanged(self, store: EventStore) -> None:
        profile = {
            "unicode": 'Zoë · 東京 · 🗝️ · "quoted" \\ back',
            "ints": [0, -1, 2**53 + 1, 2**62],
            "bools": [True, False],
            "nothing": None,
            "nested": {
                "deeper": {"empty": {}, "list": [], "mixed": [1, "two", None, {"x": False}]}
            },
        }
        [stored] = await store.push(
            AggregateChanges(account(), [AccountOpened("Zoë", profile)]), creator="u"
        )
        [read] = await store.query(EventQuery())
        assert read.payload == {"name": "Zoë", "profile": profile}
        assert read.payload == stored.payload
        assert store.registry.decode(read) == AccountOpened("Zoë", profile)
        # True stays a bool and 1 an int: JSON keeps them apart.
        assert type(read.payload["profile"]["bools"][0]) is bool
        assert type(read.payload["profile"]["ints"][3]) is int

    async def test_decoding_upcasts_an_event_stored_at_an_older_revision(
        self, store: EventStore
    ) -> None:
        old = EventStore(store.db, registry(AccountOpened, AccountRenamedV1))
        await old.push(AggregateChanges(account(), [AccountRenamedV1("Annie")]), creator="u")
        await store.push(AggregateChanges(account(), [AccountRenamed("Ann")]), creator="u")
        v1, v2 = await store.query(EventQuery())
        assert (v1.revision, v2.revision) == (1, 2)
        assert store.registry.decode(v1) == AccountRenamed(display_name="Annie")
        assert store.registry.decode(v2) == AccountRenamed(display_name="Ann")

    async def test_decoding_an_unregistered_type_raises(self, store: EventStore) -> None:
        await store.push(AggregateChanges(team(), [TeamFormed("Blue")]), creator="u")
        [stored] = await store.query(EventQuery())
        with pytest.raises(UnknownEventTypeError, match="team.formed"):
            registry(AccountOpened).decode(stored)
