"""The ActionService: targets and executions, their validation and permissions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions.conftest import ACTIONS
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio

PUBLIC = "https://hooks.example.com/donjon"


async def create_target(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "hook",
        "endpoint": PUBLIC,
        "timeout": "10s",
        "restWebhook": {"interruptOnError": True},
        **overrides,
    }
    return await api.ok(ACTIONS, "CreateTarget", body)


async def test_created_target_is_read_back_with_its_signing_key(api: Api) -> None:
    created = await create_target(api)
    assert created["id"] and len(created["signingKey"]) >= 43
    target = (await api.ok(ACTIONS, "GetTarget", {"id": created["id"]}))["target"]
    assert target["name"] == "hook"
    assert target["endpoint"] == PUBLIC
    assert target["timeout"] == "10s"
    assert target["restWebhook"] == {"interruptOnError": True}
    assert target["signingKey"] == created["signingKey"]
    assert target["payloadType"] == "PAYLOAD_TYPE_JSON"


async def test_signing_key_is_sealed_in_the_event_store(api: Api) -> None:
    created = await create_target(api)
    events = await api.runtime.store.aggregate_events(api.instance_id, "target", created["id"])
    stored = events[0].payload["signing_key"]
    assert created["signingKey"] not in stored


async def test_update_changes_fields_and_rotation_returns_a_new_key(api: Api) -> None:
    created = await create_target(api)
    changed = await api.ok(
        ACTIONS,
        "UpdateTarget",
        {"id": created["id"], "name": "renamed", "timeout": "2.5s", "restCall": {}},
    )
    assert "signingKey" not in changed
    target = (await api.ok(ACTIONS, "GetTarget", {"id": created["id"]}))["target"]
    assert target["name"] == "renamed"
    assert target["timeout"] == "2.5s"
    assert target["restCall"] == {"interruptOnError": False}
    rotated = await api.ok(
        ACTIONS, "UpdateTarget", {"id": created["id"], "expirationSigningKey": "60s"}
    )
    assert rotated["signingKey"] != created["signingKey"]
    target = (await api.ok(ACTIONS, "GetTarget", {"id": created["id"]}))["target"]
    assert target["signingKey"] == rotated["signingKey"]


async def test_target_names_are_unique_in_the_instance(api: Api) -> None:
    await create_target(api)
    status, code, _ = await api.error(
        ACTIONS, "CreateTarget",
        {"name": "hook", "endpoint": PUBLIC, "timeout": "1s", "restAsync": {}},
    )  # fmt: skip
    assert (status, code) == (409, "already_exists")


async def test_bad_targets_are_refused_naming_the_field(api: Api) -> None:
    cases = [
        ({"name": ""}, "name"),
        ({"endpoint": "ftp://example.com"}, "endpoint"),
        ({"endpoint": "not a url"}, "endpoint"),
        ({"endpoint": "http://127.0.0.1:9/x"}, "endpoint"),
        ({"endpoint": "http://169.254.169.254/latest"}, "endpoint"),
        ({"endpoint": "http://[::1]/"}, "endpoint"),
        ({"timeout": None}, "timeout"),
        ({"timeout": "ten"}, "timeout"),
        ({"timeout": "0s"}, "timeout"),
        ({"timeout": "301s"}, "timeout"),
        ({"restWebhook": None}, "targetType"),
        ({"restCall": {}}, "targetType"),
        ({"payloadType": "PAYLOAD_TYPE_XML"}, "payloadType"),
    ]
    for override, field_name in cases:
        body = {
            "name": "bad",
            "endpoint": PUBLIC,
            "timeout": "1s",
            "restWebhook": {},
            **override,
        }
        body = {k: v for k, v in body.items() if v is not None}
        status, code, message = await api.error(ACTIONS, "CreateTarget", body)
        assert (status, code) == (400, "invalid_argument"), (override, message)
        assert message.startswith(field_name), (override, message)


async def test_list_targets_filters_by_name_and_pages(api: Api) -> None:
    ids = [(await create_target(api, name=f"hook-{i}"))["id"] for i in range(3)]
    listed = await api.ok(ACTIONS, "ListTargets", {"pagination": {"limit": 2, "asc": True}})
    assert listed["pagination"] == {"totalResult": "3", "appliedLimit": "2"}
    assert [t["id"] for t in listed["targets"]] == ids[:2]
    named = await api.ok(
        ACTIONS,
        "ListTargets",
        {"filters": [{"targetNameFilter": {"targetName": "hook-1"}}]},
    )
    assert [t["id"] for t in named["targets"]] == [ids[1]]
    by_ids = await api.ok(
        ACTIONS, "ListTargets", {"filters": [{"inTargetIdsFilter": {"targetIds": ids[1:]}}]}
    )
    assert {t["id"] for t in by_ids["targets"]} == set(ids[1:])


async def test_executions_bind_conditions_to_targets_in_order(api: Api) -> None:
    a = (await create_target(api, name="a"))["id"]
    b = (await create_target(api, name="b"))["id"]
    conditions = [
        {"event": {"event": "user.human.added"}},
        {"event": {"group": "user.human"}},
        {"event": {"all": True}},
        {"request": {"method": "/zitadel.user.v2.UserService/AddHumanUser"}},
        {"response": {"service": "zitadel.user.v2.UserService"}},
        {"request": {"all": True}},
        {"function": {"name": "preaccesstoken"}},
    ]
    for condition in conditions:
        await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [b, a]})
    listed = await api.ok(ACTIONS, "ListExecutions", {"pagination": {"limit": 100}})
    assert listed["pagination"]["totalResult"] == str(len(conditions))
    got = {str(e["condition"]): e["targets"] for e in listed["executions"]}
    for condition in conditions:
        assert got[str(condition)] == [b, a], condition
    events = await api.ok(
        ACTIONS,
        "ListExecutions",
        {"filters": [{"executionTypeFilter": {"executionType": "EXECUTION_TYPE_EVENT"}}]},
    )
    assert events["pagination"]["totalResult"] == "3"
    one = await api.ok(
        ACTIONS,
        "ListExecutions",
        {"filters": [{"inConditionsFilter": {"conditions": [conditions[1]]}}]},
    )
    assert [e["condition"] for e in one["executions"]] == [conditions[1]]


async def test_empty_targets_remove_the_execution(api: Api) -> None:
    a = (await create_target(api))["id"]
    condition = {"event": {"event": "user.human.added"}}
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [a]})
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": []})
    listed = await api.ok(ACTIONS, "ListExecutions", {})
    assert listed["executions"] == []


async def test_deleted_target_leaves_its_executions(api: Api) -> None:
    a = (await create_target(api, name="a"))["id"]
    b = (await create_target(api, name="b"))["id"]
    condition = {"event": {"all": True}}
    await api.ok(ACTIONS, "SetExecution", {"condition": condition, "targets": [a, b]})
    deleted = await api.ok(ACTIONS, "DeleteTarget", {"id": a})
    assert deleted["deletionDate"]
    status, code, _ = await api.error(ACTIONS, "GetTarget", {"id": a})
    assert (status, code) == (404, "not_found")
    listed = await api.ok(
        ACTIONS, "ListExecutions", {"filters": [{"targetFilter": {"targetId": b}}]}
    )
    assert [e["targets"] for e in listed["executions"]] == [[b]]
    # The name is free again.
    await create_target(api, name="a")


async def test_bad_executions_are_refused(api: Api) -> None:
    a = (await create_target(api))["id"]
    cases = [
        ({}, 400, "condition"),
        ({"event": {"event": "user.nothing.happened"}}, 400, "condition.event.event"),
        ({"event": {"group": "nosuchgroup"}}, 400, "condition.event.group"),
        ({"event": {"event": "user.human.added", "all": True}}, 400, "condition.event"),
        ({"request": {"method": "/zitadel.user.v2.UserService/Nope"}}, 400, "condition.request"),
        ({"response": {"service": "zitadel.nope.v2.Nope"}}, 400, "condition.response"),
        ({"function": {"name": "postlogin"}}, 400, "condition.function.name"),
    ]
    for condition, status, field_name in cases:
        got_status, code, message = await api.error(
            ACTIONS, "SetExecution", {"condition": condition, "targets": [a]}
        )
        assert got_status == status, (condition, message)
        assert message.startswith(field_name), (condition, message)
    status, code, message = await api.error(
        ACTIONS,
        "SetExecution",
        {"condition": {"event": {"all": True}}, "targets": [a, "404404"]},
    )
    assert (status, code) == (404, "not_found") and message.startswith("targets.1"), message


async def test_execution_catalogues_list_functions_methods_and_services(api: Api) -> None:
    functions = await api.ok(ACTIONS, "ListExecutionFunctions", {})
    assert functions["functions"] == ["preaccesstoken", "preuserinfo", "presamlresponse"]
    methods = (await api.ok(ACTIONS, "ListExecutionMethods", {}))["methods"]
    assert "/zitadel.user.v2.UserService/AddHumanUser" in methods
    assert "/zitadel.action.v2.ActionService/CreateTarget" in methods
    services = (await api.ok(ACTIONS, "ListExecutionServices", {}))["services"]
    assert "zitadel.user.v2.UserService" in services


async def test_actions_need_instance_permissions(api: Api) -> None:
    _, other = await machine_with_token(api, "org-owner", org_roles=["ORG_OWNER"])
    _, viewer = await machine_with_token(api, "viewer", instance_roles=["IAM_OWNER_VIEWER"])
    assert (await viewer.ok(ACTIONS, "ListTargets", {}))["targets"] == []
    status, code, _ = await viewer.error(ACTIONS, "DeleteTarget", {"id": "1"})
    assert (status, code) == (403, "permission_denied")
    status, code, _ = await other.error(ACTIONS, "ListTargets", {})
    assert (status, code) == (403, "permission_denied")
    status, code, _ = await other.error(
        ACTIONS, "CreateTarget",
        {"name": "x", "endpoint": PUBLIC, "timeout": "1s", "restAsync": {}},
    )  # fmt: skip
    assert (status, code) == (403, "permission_denied")
    status, code, _ = await api.as_token(None).error(ACTIONS, "ListTargets", {})
    assert status == 401
