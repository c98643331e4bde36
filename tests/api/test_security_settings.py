"""SettingsService security settings (instance level only): impersonation and iframe
embedding, and the impersonator roles' permissions."""

from __future__ import annotations

import pytest

from donjon.core.eventstore.query import EventQuery
from donjon.core.identity import members, policies
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token

pytestmark = pytest.mark.anyio


async def test_security_settings_are_off_until_set_and_keep_what_is_left_out(api: Api) -> None:
    got = await api.ok("settings", "GetSecuritySettings", {})
    assert got["settings"] == {
        "embeddedIframe": {"enabled": False, "allowedOrigins": []},
        "enableImpersonation": False,
    }
    await api.ok("settings", "SetSecuritySettings", {"enableImpersonation": True})
    set_origins = {
        "embeddedIframe": {
            "enabled": True,
            "allowedOrigins": ["https://shop.example.com", "http://localhost:3000/"],
        }
    }
    details = (await api.ok("settings", "SetSecuritySettings", set_origins))["details"]
    assert details["resourceOwner"] == api.instance_id
    got = await api.ok("settings", "GetSecuritySettings", {})
    assert got["settings"] == {
        "embeddedIframe": {
            "enabled": True,
            "allowedOrigins": ["https://shop.example.com", "http://localhost:3000"],
        },
        "enableImpersonation": True,
    }
    async with api.runtime.db.read() as conn:
        found = await policies.security_policy(conn, api.instance_id)
    assert found.policy.enable_impersonation and found.level == policies.INSTANCE
    # The same values again store nothing.
    query = EventQuery(instance_ids=(api.instance_id,), aggregate_types=("instance",))
    events = await api.runtime.store.query(query)
    await api.ok("settings", "SetSecuritySettings", {"enableImpersonation": True})
    again = await api.runtime.store.query(query)
    assert len(again) == len(events)
    assert events[-1].type == "instance.policy.security.set"


@pytest.mark.parametrize(
    "origin",
    ["shop.example.com", "ftp://shop.example.com", "https://shop.example.com/path", "https://"],
)
async def test_an_allowed_origin_must_be_an_origin(api: Api, origin: str) -> None:
    body = {"embeddedIframe": {"allowedOrigins": [origin]}}
    status, code, message = await api.error("settings", "SetSecuritySettings", body)
    assert (status, code) == (400, "invalid_argument")
    assert "embeddedIframe.allowedOrigins.0" in message


async def test_only_instance_policy_writers_set_security_settings(api: Api) -> None:
    _, org_owner = await machine_with_token(api, "org-owner", org_roles=["ORG_OWNER"])
    status, code, _ = await org_owner.error(
        "settings", "SetSecuritySettings", {"enableImpersonation": True}
    )
    assert (status, code) == (403, "permission_denied")
    assert (await org_owner.ok("settings", "GetSecuritySettings", {}))["settings"][
        "enableImpersonation"
    ] is False


def test_impersonation_comes_only_from_the_impersonator_roles() -> None:
    assert not members.grants("IAM_OWNER", members.IMPERSONATION)
    assert members.grants("IAM_OWNER", "user.write")
    assert members.grants("IAM_END_USER_IMPERSONATOR", members.IMPERSONATION)
    assert not members.grants("IAM_END_USER_IMPERSONATOR", members.ADMIN_IMPERSONATION)
    assert members.grants("ORG_END_USER_IMPERSONATOR", members.IMPERSONATION)
    assert members.grants("ORG_ADMIN_IMPERSONATOR", members.ADMIN_IMPERSONATION)
    assert members.grants("IAM_ADMIN_IMPERSONATOR", members.ADMIN_IMPERSONATION)
    assert "ORG_END_USER_IMPERSONATOR" in members.ROLES_BY_SCOPE[members.ORG]
    assert "IAM_END_USER_IMPERSONATOR" in members.ROLES_BY_SCOPE[members.INSTANCE]
