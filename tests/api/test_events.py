"""The audit trail: AdminService ListEvents, ListEventTypes, ListAggregateTypes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from donjon.core.api.connect import timestamp
from donjon.core.identity import orgs
from donjon.core.instance import add_instance
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio

ADMIN = "zitadel.admin.v1.AdminService"


async def events(api: Api, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return (await api.ok(ADMIN, "ListEvents", body or {}))["events"]


async def test_an_org_added_is_in_the_trail_with_its_editor_and_payload(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Audited"}))["organizationId"]

    [event] = await events(api, {"eventTypes": ["org.added"], "aggregateId": org_id})

    assert event["type"] == {
        "type": "org.added",
        "localized": {"key": "EventTypes.org.added", "localizedMessage": "Org added"},
    }
    assert event["aggregate"] == {
        "id": org_id,
        "type": {
            "type": "org",
            "localized": {"key": "AggregateTypes.org", "localizedMessage": "Org"},
        },
        "resourceOwner": org_id,
    }
    assert event["editor"]["userId"] == api.admin_id
    assert event["editor"]["displayName"] == "Automatically Initialized IAM_OWNER"
    assert event["payload"] == {"name": "Audited"}
    assert event["creationDate"].endswith("Z")
    assert int(event["sequence"]) > 0


async def test_newest_first_by_default_and_paging_by_position_both_ways(api: Api) -> None:
    for name in ("P1", "P2", "P3"):
        await api.ok("org", "AddOrganization", {"name": name})
    everything = await events(api, {"limit": 1000, "asc": True})
    positions = [int(e["sequence"]) for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    newest = await events(api, {"limit": 3})
    assert [int(e["sequence"]) for e in newest] == positions[::-1][:3]

    pages: list[int] = []
    cursor = "0"
    while True:
        page = await events(api, {"asc": True, "limit": 7, "sequence": cursor})
        if not page:
            break
        pages += [int(e["sequence"]) for e in page]
        cursor = page[-1]["sequence"]
    assert pages == positions

    backwards: list[int] = []
    cursor = ""
    while True:
        page = await events(api, {"limit": 5, **({"sequence": cursor} if cursor else {})})
        if not page:
            break
        backwards += [int(e["sequence"]) for e in page]
        cursor = page[-1]["sequence"]
    assert backwards == positions[::-1]


async def test_filters_by_editor_aggregate_type_owner_and_creation_date(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Filtered"}))["organizationId"]
    by_owner = await events(api, {"resourceOwner": org_id, "asc": True})
    assert {e["aggregate"]["resourceOwner"] for e in by_owner} == {org_id}
    assert [e["type"]["type"] for e in by_owner][0] == "org.added"

    by_editor = await events(api, {"editorUserId": "SYSTEM", "limit": 1000})
    assert by_editor and all(e["editor"]["userId"] == "SYSTEM" for e in by_editor)
    assert {e["editor"]["displayName"] for e in by_editor} == {"System"}
    assert org_id not in {e["aggregate"]["id"] for e in by_editor}

    users = await events(api, {"aggregateTypes": ["user"], "limit": 1000})
    assert users and {e["aggregate"]["type"]["type"] for e in users} == {"user"}

    [added] = await events(api, {"aggregateId": org_id, "eventTypes": ["org.added"]})
    at = added["creationDate"]
    around = await events(api, {"aggregateId": org_id, "range": {"since": at, "until": at}})
    assert added["sequence"] in {e["sequence"] for e in around}
    later = timestamp(datetime.fromisoformat(at.replace("Z", "+00:00")) + timedelta(seconds=1))
    assert await events(api, {"aggregateId": org_id, "range": {"since": later}}) == []
    assert await events(api, {"aggregateId": org_id, "creationDate": later, "asc": True}) == []
    assert await events(api, {"aggregateId": org_id, "creationDate": later}) != []


async def test_password_hashes_and_token_digests_are_redacted(api: Api) -> None:
    trail = await events(api, {"aggregateTypes": ["user"], "limit": 1000, "asc": True})
    human = next(e for e in trail if e["type"]["type"] == "user.human.added")
    pat = next(e for e in trail if e["type"]["type"] == "user.personal.access.token.added")
    assert human["payload"]["password_hash"] == "[redacted]"
    assert human["payload"]["username"] == "admin"
    assert pat["payload"]["digest"] == "[redacted]"
    stored = await api.runtime.store.aggregate_events(
        api.instance_id, "user", pat["aggregate"]["id"]
    )
    digest = next(e.payload["digest"] for e in stored if e.type == pat["type"]["type"])
    text = json.dumps(trail)
    assert digest not in text and "$argon2" not in text


def test_redaction_reaches_nested_keys_and_any_hash_or_digest_name() -> None:
    from donjon.core.api.event_service import redact

    assert redact(
        {"a": 1, "code_digest": "x", "nested": [{"secret_hash": "y", "keep": "z"}], "Digest": "w"}
    ) == {
        "a": 1,
        "code_digest": "[redacted]",
        "nested": [{"secret_hash": "[redacted]", "keep": "z"}],
        "Digest": "[redacted]",
    }


async def test_an_org_owner_sees_only_its_orgs_events(api: Api) -> None:
    org_id = (await api.ok("org", "AddOrganization", {"name": "Tenant org"}))["organizationId"]
    _, owner = await machine_with_token(api, "tenant-owner", org_id=org_id, org_roles=["ORG_OWNER"])
    await api.ok("org", "UpdateOrganization", {"organizationId": api.org_id, "name": "Root org"})

    seen = await events(owner, {"limit": 1000})
    assert seen and {e["aggregate"]["resourceOwner"] for e in seen} == {org_id}
    assert "user.machine.added" in {e["type"]["type"] for e in seen}  # its own user
    assert await events(owner, {"resourceOwner": api.org_id}) == []
    assert await events(owner, {"resourceOwner": api.instance_id}) == []
    assert await events(owner, {"aggregateId": api.org_id}) == []
    # Types can be listed by anyone holding events.read.
    assert (await owner.ok(ADMIN, "ListEventTypes"))["eventTypes"]


async def test_no_events_read_is_permission_denied(api: Api) -> None:
    _, creator = await machine_with_token(api, "creator", org_roles=["ORG_PROJECT_CREATOR"])
    for method in ("ListEvents", "ListEventTypes", "ListAggregateTypes"):
        assert (await creator.error(ADMIN, method))[:2] == (403, "permission_denied")
    assert (await api.as_token(None).error(ADMIN, "ListEvents"))[:2] == (401, "unauthenticated")


async def test_events_of_other_instances_are_never_shown(api: Api) -> None:
    await api.runtime.store.push(
        [
            add_instance("elsewhere", "elsewhere", ["elsewhere.example"]),
            orgs.add_org("elsewhere", "elsewhere-org", "Elsewhere", "elsewhere.example"),
        ],
        creator="SYSTEM",
    )
    trail = await events(api, {"limit": 1000})
    assert "elsewhere" not in {e["aggregate"]["id"] for e in trail}
    assert "elsewhere-org" not in {e["aggregate"]["resourceOwner"] for e in trail}
    assert await events(api, {"resourceOwner": "elsewhere-org"}) == []


async def test_bad_input_names_the_field(api: Api) -> None:
    cases = [
        ({"limit": 5000}, "limit: must be at most 1000"),
        ({"limit": "x"}, "limit: "),
        ({"sequence": "abc"}, "sequence: expected an integer"),
        ({"creationDate": "yesterday"}, "creationDate: expected an RFC 3339"),
        ({"range": {"since": "2026-01-01"}}, "range.since: the timestamp needs a time zone"),
        (
            {"range": {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}},
            "range.until: must not be before range.since",
        ),
        (
            {"creationDate": "2026-01-01T00:00:00Z", "range": {}},
            "range: set creationDate or range, not both",
        ),
        ({"eventTypes": ["org.added", " "]}, "eventTypes.1: must not be empty"),
        ({"eventTypes": "org.added"}, "eventTypes: "),
    ]
    for body, message in cases:
        status, code, got = await api.error(ADMIN, "ListEvents", body)
        assert (status, code) == (400, "invalid_argument"), (body, got)
        assert got.startswith(message), (body, got)


async def test_event_and_aggregate_types_name_what_can_be_searched(api: Api) -> None:
    types = {t["type"] for t in (await api.ok(ADMIN, "ListEventTypes"))["eventTypes"]}
    assert {"org.added", "user.human.added", "instance.domain.added"} <= types
    aggregates = (await api.ok(ADMIN, "ListAggregateTypes"))["aggregateTypes"]
    assert {"instance", "org", "user"} <= {a["type"] for a in aggregates}
    assert {"key": "AggregateTypes.user", "localizedMessage": "User"} in [
        a["localized"] for a in aggregates
    ]
