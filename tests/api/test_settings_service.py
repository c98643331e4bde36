"""SettingsService over Connect JSON, and the policy accessors other commands use.

Policies resolve org override -> instance -> configured defaults.
"""

from __future__ import annotations

import pytest

from donjon.core.identity import policies, policy_events
from donjon.core.identity.policy_types import Lockout, PasswordComplexity
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_accessors_resolve_org_override_then_instance_then_defaults(api: Api) -> None:
    rt, iid, org = api.runtime, api.instance_id, api.org_id
    async with rt.db.read() as conn:
        assert await policies.password_complexity(conn, iid, org, rt.settings) == (
            policies.default_password_complexity(rt.settings)
        )
        assert await policies.lockout(conn, iid, None, rt.settings) == Lockout(0, 0)

    instance_state = await policy_events.InstancePolicies.load(rt.store, iid, iid)
    changes = policy_events.set_policy(
        instance_state, policy_events.PASSWORD_COMPLEXITY, PasswordComplexity(min_length=12)
    )
    assert changes is not None
    await rt.store.push(changes, creator="test")
    org_state = await policy_events.OrgPolicies.load(rt.store, iid, org)
    changes = policy_events.set_policy(
        org_state, policy_events.PASSWORD_COMPLEXITY, PasswordComplexity(min_length=20)
    )
    assert changes is not None
    await rt.store.push(changes, creator="test")

    async with rt.db.read() as conn:
        assert (await policies.password_complexity(conn, iid, org, rt.settings)).min_length == 20
        assert (await policies.password_complexity(conn, iid, None, rt.settings)).min_length == 12
        assert (
            await policies.password_complexity(conn, iid, "other", rt.settings)
        ).min_length == 12


async def _machine_user_token(api: Api, username: str) -> tuple[str, str]:
    """A machine user of the first org with a PAT, and no memberships: (user id, token)."""
    from donjon.core import ids
    from donjon.core.identity import secrets, users

    user_id, token = ids.new_id(), secrets.new_secret()
    await api.runtime.store.push(
        users.new_user(
            api.instance_id,
            user_id,
            api.org_id,
            [
                users.MachineAdded(username=username, name=username),
                users.PersonalAccessTokenAdded(token_id=ids.new_id(), digest=secrets.digest(token)),
            ],
            username,
        ),
        creator="test",
    )
    return user_id, token


async def test_get_defaults_set_instance_override_in_org_and_remove_the_override(
    api: Api,
) -> None:
    instance = {"ctx": {"instance": True}}
    org = {"ctx": {"orgId": api.org_id}}
    got = await api.ok("settings", "GetPasswordComplexitySettings", instance)
    assert got["settings"] == {
        "minLength": "8",
        "requiresUppercase": True,
        "requiresLowercase": True,
        "requiresNumber": True,
        "requiresSymbol": True,
        "resourceOwnerType": "RESOURCE_OWNER_TYPE_INSTANCE",
    }
    assert got["details"]["resourceOwner"] == api.instance_id

    stored = await api.ok(
        "settings", "SetPasswordComplexitySettings", {**instance, "minLength": "10"}
    )
    assert stored["details"]["resourceOwner"] == api.instance_id
    got = await api.ok("settings", "GetPasswordComplexitySettings", org)
    assert got["settings"]["minLength"] == "10"
    assert got["settings"]["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_INSTANCE"

    await api.ok(
        "settings",
        "SetPasswordComplexitySettings",
        {**org, "minLength": 14, "requiresSymbol": False},
    )
    got = await api.ok("settings", "GetPasswordComplexitySettings", org)
    assert got["settings"]["minLength"] == "14"
    assert got["settings"]["requiresSymbol"] is False
    assert got["settings"]["requiresUppercase"] is True  # inherited when the override was made
    assert got["settings"]["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_ORG"
    assert got["details"]["resourceOwner"] == api.org_id
    # Without ctx, the caller's org is asked.
    assert (await api.ok("settings", "GetPasswordComplexitySettings"))["settings"] == got[
        "settings"
    ]
    # The instance is unaffected.
    got = await api.ok("settings", "GetPasswordComplexitySettings", instance)
    assert got["settings"]["minLength"] == "10"
    assert got["settings"]["requiresSymbol"] is True

    # Commands see the same: the org's users get the override.
    async with api.runtime.db.read() as conn:
        policy = await policies.password_complexity(
            conn, api.instance_id, api.org_id, api.runtime.settings
        )
    assert (policy.min_length, policy.has_symbol) == (14, False)

    await api.ok(
        "settings", "DeleteOrganizationPasswordComplexitySettings", {"organizationId": api.org_id}
    )
    got = await api.ok("settings", "GetPasswordComplexitySettings", org)
    assert got["settings"]["minLength"] == "10"
    assert got["settings"]["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_INSTANCE"
    status, code, _ = await api.error(
        "settings", "DeleteOrganizationPasswordComplexitySettings", {"organizationId": api.org_id}
    )
    assert (status, code) == (404, "not_found")


async def test_lockout_login_and_domain_settings_round_trip(api: Api) -> None:
    org = {"ctx": {"orgId": api.org_id}}
    got = await api.ok("settings", "GetLockoutSettings", org)
    assert got["settings"] == {
        "maxPasswordAttempts": "0",
        "maxOtpAttempts": "0",
        "resourceOwnerType": "RESOURCE_OWNER_TYPE_INSTANCE",
    }
    await api.ok("settings", "SetLockoutSettings", {**org, "maxPasswordAttempts": "3"})
    got = await api.ok("settings", "GetLockoutSettings", org)
    assert got["settings"]["maxPasswordAttempts"] == "3"
    assert got["settings"]["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_ORG"
    async with api.runtime.db.read() as conn:
        assert (
            await policies.lockout(conn, api.instance_id, api.org_id, api.runtime.settings)
        ) == Lockout(max_password_attempts=3, max_otp_attempts=0)

    login = (await api.ok("settings", "GetLoginSettings", org))["settings"]
    assert login["allowUsernamePassword"] is True
    assert login["passkeysType"] == "PASSKEYS_TYPE_ALLOWED"
    assert login["passwordCheckLifetime"] == "864000s"
    assert login["secondFactors"] == ["SECOND_FACTOR_TYPE_OTP", "SECOND_FACTOR_TYPE_U2F"]
    await api.ok(
        "settings",
        "SetLoginSettings",
        {
            "ctx": {"instance": True},
            "forceMfa": True,
            "allowRegister": False,
            "passkeysType": "PASSKEYS_TYPE_NOT_ALLOWED",
            "passwordCheckLifetime": "3600s",
            "secondFactors": ["SECOND_FACTOR_TYPE_TOTP", "SECOND_FACTOR_TYPE_OTP_EMAIL"],
            "defaultRedirectUri": "https://app.example.com/",
        },
    )
    login = (await api.ok("settings", "GetLoginSettings", org))["settings"]
    assert login["forceMfa"] is True and login["allowRegister"] is False
    assert login["passkeysType"] == "PASSKEYS_TYPE_NOT_ALLOWED"
    assert login["passwordCheckLifetime"] == "3600s"
    assert login["secondFactors"] == ["SECOND_FACTOR_TYPE_OTP", "SECOND_FACTOR_TYPE_OTP_EMAIL"]
    assert login["defaultRedirectUri"] == "https://app.example.com/"
    async with api.runtime.db.read() as conn:
        policy = await policies.login_policy(conn, api.instance_id, None, api.runtime.settings)
    assert policy.force_mfa and not policy.passwordless_allowed
    assert policy.password_check_lifetime.total_seconds() == 3600

    domain = (await api.ok("settings", "GetDomainSettings", org))["settings"]
    assert domain == {
        "loginNameIncludesDomain": False,
        "requireOrgDomainVerification": False,
        "smtpSenderAddressMatchesInstanceDomain": False,
        "resourceOwnerType": "RESOURCE_OWNER_TYPE_INSTANCE",
    }
    await api.ok("settings", "SetDomainSettings", {**org, "loginNameIncludesDomain": True})
    domain = (await api.ok("settings", "GetDomainSettings", org))["settings"]
    assert domain["loginNameIncludesDomain"] is True
    await api.ok("settings", "DeleteOrganizationDomainSettings", {"organizationId": api.org_id})
    await api.ok("settings", "DeleteOrganizationLockoutSettings", {"organizationId": api.org_id})
    got = await api.ok("settings", "GetLockoutSettings", org)
    assert got["settings"]["maxPasswordAttempts"] == "0"


async def test_setting_the_same_values_twice_writes_once(api: Api) -> None:
    body = {"ctx": {"instance": True}, "maxOtpAttempts": "5"}
    first = await api.ok("settings", "SetLockoutSettings", body)
    position = await api.runtime.store.max_position()
    second = await api.ok("settings", "SetLockoutSettings", body)
    assert await api.runtime.store.max_position() == position
    assert second["details"]["sequence"] == first["details"]["sequence"]


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        ("SetPasswordComplexitySettings", {"minLength": "0"}, "minLength"),
        ("SetPasswordComplexitySettings", {"minLength": "73"}, "minLength"),
        ("SetPasswordComplexitySettings", {"minLength": "eight"}, "minLength"),
        ("SetPasswordComplexitySettings", {"requiresNumber": "yes"}, "requiresNumber"),
        ("SetLockoutSettings", {"maxPasswordAttempts": "-1"}, "maxPasswordAttempts"),
        ("SetLockoutSettings", {"maxOtpAttempts": [1]}, "maxOtpAttempts"),
        ("SetLoginSettings", {"passkeysType": "SOMETIMES"}, "passkeysType"),
        ("SetLoginSettings", {"passwordCheckLifetime": "-5s"}, "passwordCheckLifetime"),
        ("SetLoginSettings", {"mfaInitSkipLifetime": "soon"}, "mfaInitSkipLifetime"),
        ("SetLoginSettings", {"secondFactors": ["SECOND_FACTOR_TYPE_OTP", "X"]}, "secondFactors.1"),
        ("SetLoginSettings", {"multiFactors": ["MULTI_FACTOR_TYPE_UNSPECIFIED"]}, "multiFactors.0"),
        ("SetLoginSettings", {"defaultRedirectUri": "not a uri"}, "defaultRedirectUri"),
        (
            "SetLoginSettings",
            {"allowUsernamePassword": True, "allowLocalAuthentication": False},
            "allowLocalAuthentication",
        ),
        ("SetDomainSettings", {"loginNameIncludesDomain": 1}, "loginNameIncludesDomain"),
    ],
)
async def test_bad_settings_name_the_field_and_write_nothing(
    api: Api, method: str, body: dict, field: str
) -> None:
    before = await api.runtime.store.max_position()
    status, code, message = await api.error("settings", method, {"ctx": {"instance": True}, **body})
    assert (status, code) == (400, "invalid_argument")
    assert message.startswith(f"{field}:"), message
    assert await api.runtime.store.max_position() == before


async def test_bad_context_and_unknown_orgs(api: Api) -> None:
    before = await api.runtime.store.max_position()
    status, code, message = await api.error("settings", "SetLockoutSettings", {"maxOtpAttempts": 1})
    assert (status, code) == (400, "invalid_argument") and message.startswith("ctx:")
    status, code, message = await api.error(
        "settings", "GetLoginSettings", {"ctx": {"instance": True, "orgId": api.org_id}}
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("ctx:")
    for method in ("GetLoginSettings", "SetDomainSettings"):
        status, code, message = await api.error("settings", method, {"ctx": {"orgId": "nope"}})
        assert (status, code) == (404, "not_found") and message.startswith("ctx.orgId:")
    status, code, message = await api.error(
        "settings", "DeleteOrganizationLoginSettings", {"organizationId": ""}
    )
    assert (status, code, message) == (400, "invalid_argument", "organizationId: is required")
    status, code, _ = await api.error(
        "settings", "DeleteOrganizationLoginSettings", {"organizationId": "nope"}
    )
    assert (status, code) == (404, "not_found")
    assert await api.runtime.store.max_position() == before


async def test_users_without_membership_may_neither_read_nor_set(api: Api) -> None:
    _, token = await _machine_user_token(api, "nobody")
    nobody = api.as_token(token)
    for method, body in (
        ("GetLoginSettings", {}),
        ("GetPasswordComplexitySettings", {"ctx": {"instance": True}}),
        ("SetLockoutSettings", {"ctx": {"instance": True}, "maxOtpAttempts": 3}),
        ("SetLockoutSettings", {"ctx": {"orgId": api.org_id}, "maxOtpAttempts": 3}),
        ("DeleteOrganizationLockoutSettings", {"organizationId": api.org_id}),
    ):
        status, code, _ = await nobody.error("settings", method, body)
        assert (status, code) == (403, "permission_denied"), method


async def test_org_owner_sets_its_org_but_not_the_instance(api: Api) -> None:
    from donjon.core.identity import members

    user_id, token = await _machine_user_token(api, "org-owner")
    await api.runtime.store.push(
        members.add_member(
            members.ORG, api.instance_id, api.org_id, api.org_id, user_id, ["ORG_OWNER"]
        ),
        creator="test",
    )
    owner = api.as_token(token)
    await owner.ok(
        "settings", "SetLockoutSettings", {"ctx": {"orgId": api.org_id}, "maxOtpAttempts": 2}
    )
    assert (await owner.ok("settings", "GetLockoutSettings", {"ctx": {"instance": True}}))[
        "settings"
    ]["maxOtpAttempts"] == "0"
    status, code, _ = await owner.error(
        "settings", "SetLockoutSettings", {"ctx": {"instance": True}, "maxOtpAttempts": 2}
    )
    assert (status, code) == (403, "permission_denied")
