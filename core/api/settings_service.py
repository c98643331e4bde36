"""zitadel.settings.v2.SettingsService: login, password complexity, lockout, domain and
security settings.

Getters as ZITADEL serves them: `ctx` selects the level (`{"instance": true}`
or `{"orgId": "..."}`; absent: the org the call acts in, from the
`x-zitadel-orgid` header or the caller's own). An org sees its own settings
when it stored some, else the instance's, else the configured defaults
(`DefaultInstance.*Policy`); `resourceOwnerType` says which of org and
instance answered.

Setters, which ZITADEL offers through its admin and management v1 APIs only:
`Set<Kind>Settings` with an explicit `ctx` and the settings fields (those
left out keep the value that applies at that level now; an org's first set
stores a whole policy, copied from what it inherited, so later instance
changes no longer reach it), and `DeleteOrganization<Kind>Settings`, which
drops an org's own policy so the instance's applies again. Instance level
needs `iam.policy.write`; org level `policy.write` (`policy.delete` to
drop) on that org; reading needs `policy.read`.

Security settings are the instance's only, as in ZITADEL's settings v2:
`GetSecuritySettings` and `SetSecuritySettings` (`embeddedIframe`
{`enabled`, `allowedOrigins`} and `enableImpersonation`, which token
exchange needs before it impersonates anyone; see docs/oidc.md), in `settings_security`;
branding in `settings_branding`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    details,
    int64,
    invalid,
    not_found,
)
from donjon.core.identity import orgs, policies, policy_types
from donjon.core.identity.policy_events import (
    DOMAIN,
    LOCKOUT,
    LOGIN,
    PASSWORD_COMPLEXITY,
    InstancePolicies,
    OrgPolicies,
    PolicyKind,
    remove_org_policy,
    set_policy,
)
from donjon.core.identity.policy_types import (
    MAX_MIN_LENGTH,
    DomainPolicy,
    Lockout,
    LoginPolicy,
    PasswordComplexity,
    Policy,
)

service = Service("zitadel.settings.v2.SettingsService")

OWNER_TYPES = {
    policies.ORG: "RESOURCE_OWNER_TYPE_ORG",
    policies.INSTANCE: "RESOURCE_OWNER_TYPE_INSTANCE",
    policies.DEFAULT: "RESOURCE_OWNER_TYPE_INSTANCE",
}
SECOND_FACTORS = {
    "otp": "SECOND_FACTOR_TYPE_OTP",
    "u2f": "SECOND_FACTOR_TYPE_U2F",
    "otp_email": "SECOND_FACTOR_TYPE_OTP_EMAIL",
    "otp_sms": "SECOND_FACTOR_TYPE_OTP_SMS",
    "recovery_codes": "SECOND_FACTOR_TYPE_RECOVERY_CODES",
}
# SECOND_FACTOR_TYPE_TOTP is the newer name of SECOND_FACTOR_TYPE_OTP (time-based codes).
SECOND_FACTOR_NAMES = {v: k for k, v in SECOND_FACTORS.items()} | {"SECOND_FACTOR_TYPE_TOTP": "otp"}
MULTI_FACTORS = {"u2f_with_verification": "MULTI_FACTOR_TYPE_U2F_WITH_VERIFICATION"}
MULTI_FACTOR_NAMES = {v: k for k, v in MULTI_FACTORS.items()}
PASSKEYS_TYPES = {
    policy_types.PASSWORDLESS_ALLOWED: "PASSKEYS_TYPE_ALLOWED",
    policy_types.PASSWORDLESS_NOT_ALLOWED: "PASSKEYS_TYPE_NOT_ALLOWED",
}
PASSKEYS_NAMES = {v: k for k, v in PASSKEYS_TYPES.items()}


class RequestContext(Message):
    instance: bool | None = None
    org_id: str | None = None


class GetSettingsRequest(Message):
    ctx: RequestContext | None = None


class SetPasswordComplexitySettingsRequest(Message):
    ctx: RequestContext | None = None
    min_length: str | int | None = None
    requires_uppercase: bool | None = None
    requires_lowercase: bool | None = None
    requires_number: bool | None = None
    requires_symbol: bool | None = None


class SetLockoutSettingsRequest(Message):
    ctx: RequestContext | None = None
    max_password_attempts: str | int | None = None
    max_otp_attempts: str | int | None = None


class SetLoginSettingsRequest(Message):
    ctx: RequestContext | None = None
    allow_username_password: bool | None = None
    # The newer name of allowUsernamePassword; either may be sent.
    allow_local_authentication: bool | None = None
    allow_register: bool | None = None
    allow_external_idp: bool | None = None
    force_mfa: bool | None = None
    force_mfa_local_only: bool | None = None
    passkeys_type: str | None = None
    hide_password_reset: bool | None = None
    ignore_unknown_usernames: bool | None = None
    default_redirect_uri: str | None = None
    password_check_lifetime: str | None = None
    external_login_check_lifetime: str | None = None
    mfa_init_skip_lifetime: str | None = None
    second_factor_check_lifetime: str | None = None
    multi_factor_check_lifetime: str | None = None
    second_factors: list[str] | None = None
    multi_factors: list[str] | None = None
    allow_domain_discovery: bool | None = None
    disable_login_with_email: bool | None = None
    disable_login_with_phone: bool | None = None


class SetDomainSettingsRequest(Message):
    ctx: RequestContext | None = None
    login_name_includes_domain: bool | None = None
    require_org_domain_verification: bool | None = None
    smtp_sender_address_matches_instance_domain: bool | None = None


class OrganizationRequest(Message):
    organization_id: str = ""


# -- the level a call addresses ---------------------------------------------------------


async def _org_must_exist(call: Call, org_id: str, field_name: str) -> None:
    async with call.runtime.db.read() as conn:
        if await orgs.get_org(conn, call.instance_id, org_id) is None:
            raise not_found(f"{field_name}: organization {org_id}")


async def _target(call: Call, ctx: RequestContext | None, *, explicit: bool) -> str | None:
    """The org the request addresses, or None for the instance level.

    `explicit` (setters): ctx must name the level; getters fall back to the
    org the call acts in, as ZITADEL does.
    """
    if ctx is not None and ctx.instance and ctx.org_id:
        raise invalid("ctx", "set either instance or orgId, not both")
    if ctx is not None and ctx.instance:
        return None
    if ctx is not None and ctx.org_id:
        await _org_must_exist(call, ctx.org_id, "ctx.orgId")
        return ctx.org_id
    if explicit:
        raise invalid("ctx", 'is required: {"instance": true} or {"orgId": "<organization id>"}')
    org_id = call.context_org()
    if not org_id:
        return None
    await _org_must_exist(call, org_id, "ctx")
    return org_id


# -- responses ---------------------------------------------------------------------------


def _seconds(value: timedelta) -> str:
    """A protobuf JSON Duration: `864000s`."""
    return f"{value.total_seconds():g}s" if value.microseconds else f"{int(value.total_seconds())}s"


def password_complexity_json(p: PasswordComplexity) -> dict[str, Any]:
    return {
        "minLength": str(p.min_length),
        "requiresUppercase": p.has_uppercase,
        "requiresLowercase": p.has_lowercase,
        "requiresNumber": p.has_number,
        "requiresSymbol": p.has_symbol,
    }


def lockout_json(p: Lockout) -> dict[str, Any]:
    return {
        "maxPasswordAttempts": str(p.max_password_attempts),
        "maxOtpAttempts": str(p.max_otp_attempts),
    }


def login_json(p: LoginPolicy) -> dict[str, Any]:
    return {
        "allowUsernamePassword": p.allow_username_password,
        "allowLocalAuthentication": p.allow_username_password,
        "allowRegister": p.allow_register,
        "allowExternalIdp": p.allow_external_idp,
        "forceMfa": p.force_mfa,
        "forceMfaLocalOnly": p.force_mfa_local_only,
        "passkeysType": PASSKEYS_TYPES[p.passwordless_type],
        "hidePasswordReset": p.hide_password_reset,
        "ignoreUnknownUsernames": p.ignore_unknown_usernames,
        "defaultRedirectUri": p.default_redirect_uri,
        "passwordCheckLifetime": _seconds(p.password_check_lifetime),
        "externalLoginCheckLifetime": _seconds(p.external_login_check_lifetime),
        "mfaInitSkipLifetime": _seconds(p.mfa_init_skip_lifetime),
        "secondFactorCheckLifetime": _seconds(p.second_factor_check_lifetime),
        "multiFactorCheckLifetime": _seconds(p.multi_factor_check_lifetime),
        "secondFactors": [SECOND_FACTORS[f] for f in p.second_factors],
        "multiFactors": [MULTI_FACTORS[f] for f in p.multi_factors],
        "allowDomainDiscovery": p.allow_domain_discovery,
        "disableLoginWithEmail": p.disable_login_with_email,
        "disableLoginWithPhone": p.disable_login_with_phone,
    }


def domain_json(p: DomainPolicy) -> dict[str, Any]:
    return {
        "loginNameIncludesDomain": p.user_login_must_be_domain,
        "requireOrgDomainVerification": p.validate_org_domains,
        "smtpSenderAddressMatchesInstanceDomain": p.smtp_sender_address_matches_instance_domain,
    }


TO_JSON: dict[str, Callable[[Any], dict[str, Any]]] = {
    PASSWORD_COMPLEXITY.name: password_complexity_json,
    LOCKOUT.name: lockout_json,
    LOGIN.name: login_json,
    DOMAIN.name: domain_json,
}


async def _get(call: Call, req: GetSettingsRequest, kind: PolicyKind) -> dict[str, Any]:
    org_id = await _target(call, req.ctx, explicit=False)
    # Instance settings are what every org inherits: whoever may read an org's may read them.
    await call.require("policy.read", org_id=org_id or call.context_org())
    async with call.runtime.db.read() as conn:
        found = await policies.resolve(conn, call.instance_id, org_id, kind, call.runtime.settings)
    return {
        "details": details(
            sequence=found.sequence or None,
            changed_at=found.changed_at,
            owner=found.owner_id,
            created_at=found.created_at,
        ),
        "settings": {
            **TO_JSON[kind.name](found.policy),
            "resourceOwnerType": OWNER_TYPES[found.level],
        },
    }


@service.rpc("GetPasswordComplexitySettings", request=GetSettingsRequest)
async def get_password_complexity_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The password complexity settings of the instance or an org (else the instance's)."""
    return await _get(call, req, PASSWORD_COMPLEXITY)


@service.rpc("GetLockoutSettings", request=GetSettingsRequest)
async def get_lockout_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The lockout settings of the instance or an org (falling back to the instance's)."""
    return await _get(call, req, LOCKOUT)


@service.rpc("GetLoginSettings", request=GetSettingsRequest)
async def get_login_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The login settings of the instance or an org (falling back to the instance's)."""
    return await _get(call, req, LOGIN)


@service.rpc("GetDomainSettings", request=GetSettingsRequest)
async def get_domain_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The domain settings of the instance or an org (falling back to the instance's)."""
    return await _get(call, req, DOMAIN)


# -- setters -----------------------------------------------------------------------------


_PROTO_DURATION = re.compile(r"^(\d{1,12})(\.\d{1,9})?s$")


def _duration(field_name: str, value: str) -> timedelta:
    """A protobuf JSON Duration (`3600s`, `0.5s`); Go-style `1h30m` is accepted too."""
    text = value.strip()
    match = _PROTO_DURATION.match(text)
    if match:
        return timedelta(seconds=float(text[:-1]))
    from donjon.core.config import parse_duration
    from donjon.core.errors import ConfigError

    try:
        return parse_duration(text, field_name)
    except (ConfigError, ValueError, OverflowError):
        raise invalid(field_name, f"expected a duration such as 3600s, got {value!r}") from None


def _redirect_uri(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if not parts.scheme or (parts.scheme in ("http", "https") and not parts.netloc):
        raise invalid("defaultRedirectUri", f"expected an absolute URI, got {value!r}")
    return value


def _enum_list(field_name: str, values: list[str], names: dict[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    for i, value in enumerate(values):
        if value not in names:
            raise invalid(
                f"{field_name}.{i}", f"unknown value {value!r} (known: {', '.join(sorted(names))})"
            )
        out.append(names[value])
    return tuple(dict.fromkeys(out))


def password_complexity_changes(req: SetPasswordComplexitySettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if req.min_length is not None:
        length = int64("minLength", req.min_length, minimum=1)
        if length > MAX_MIN_LENGTH:
            raise invalid("minLength", f"must be at most {MAX_MIN_LENGTH}")
        changes["min_length"] = length
    for attr, name in (
        ("requires_uppercase", "has_uppercase"),
        ("requires_lowercase", "has_lowercase"),
        ("requires_number", "has_number"),
        ("requires_symbol", "has_symbol"),
    ):
        if getattr(req, attr) is not None:
            changes[name] = getattr(req, attr)
    return changes


def lockout_changes(req: SetLockoutSettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if req.max_password_attempts is not None:
        changes["max_password_attempts"] = int64("maxPasswordAttempts", req.max_password_attempts)
    if req.max_otp_attempts is not None:
        changes["max_otp_attempts"] = int64("maxOtpAttempts", req.max_otp_attempts)
    return changes


_LOGIN_FLAGS = (
    "allow_register",
    "allow_external_idp",
    "force_mfa",
    "force_mfa_local_only",
    "hide_password_reset",
    "ignore_unknown_usernames",
    "allow_domain_discovery",
    "disable_login_with_email",
    "disable_login_with_phone",
)
_LOGIN_LIFETIMES = {
    "password_check_lifetime": "passwordCheckLifetime",
    "external_login_check_lifetime": "externalLoginCheckLifetime",
    "mfa_init_skip_lifetime": "mfaInitSkipLifetime",
    "second_factor_check_lifetime": "secondFactorCheckLifetime",
    "multi_factor_check_lifetime": "multiFactorCheckLifetime",
}


def login_changes(req: SetLoginSettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    local = req.allow_username_password
    if req.allow_local_authentication is not None:
        if local is not None and local != req.allow_local_authentication:
            raise invalid(
                "allowLocalAuthentication", "contradicts allowUsernamePassword (send one of them)"
            )
        local = req.allow_local_authentication
    if local is not None:
        changes["allow_username_password"] = local
    for name in _LOGIN_FLAGS:
        if getattr(req, name) is not None:
            changes[name] = getattr(req, name)
    if req.passkeys_type is not None:
        if req.passkeys_type not in PASSKEYS_NAMES:
            raise invalid(
                "passkeysType",
                "expected PASSKEYS_TYPE_ALLOWED or PASSKEYS_TYPE_NOT_ALLOWED,"
                f" got {req.passkeys_type!r}",
            )
        changes["passwordless_type"] = PASSKEYS_NAMES[req.passkeys_type]
    if req.default_redirect_uri is not None:
        changes["default_redirect_uri"] = _redirect_uri(req.default_redirect_uri)
    for name, json_name in _LOGIN_LIFETIMES.items():
        value = getattr(req, name)
        if value is not None:
            changes[name] = _duration(json_name, value)
    if req.second_factors is not None:
        changes["second_factors"] = _enum_list(
            "secondFactors", req.second_factors, SECOND_FACTOR_NAMES
        )
    if req.multi_factors is not None:
        changes["multi_factors"] = _enum_list("multiFactors", req.multi_factors, MULTI_FACTOR_NAMES)
    return changes


def domain_changes(req: SetDomainSettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for attr, name in (
        ("login_name_includes_domain", "user_login_must_be_domain"),
        ("require_org_domain_verification", "validate_org_domains"),
        (
            "smtp_sender_address_matches_instance_domain",
            "smtp_sender_address_matches_instance_domain",
        ),
    ):
        if getattr(req, attr) is not None:
            changes[name] = getattr(req, attr)
    return changes


async def _set(
    call: Call, ctx: RequestContext | None, kind: PolicyKind, changes: dict[str, Any]
) -> dict[str, Any]:
    """Store the policy that applies at the level now, with `changes`, at that level."""
    org_id = await _target(call, ctx, explicit=True)
    if org_id is None:
        await call.require("iam.policy.write")
        state: InstancePolicies | OrgPolicies = await InstancePolicies.load(
            call.runtime.store, call.instance_id, call.instance_id
        )
    else:
        await call.require("policy.write", org_id=org_id)
        state = await OrgPolicies.load(call.runtime.store, call.instance_id, org_id)
        if not state.exists:
            raise not_found("ctx.orgId: organization")
    async with call.runtime.db.read() as conn:
        current: Policy = (
            await policies.resolve(conn, call.instance_id, org_id, kind, call.runtime.settings)
        ).policy
    new = dataclasses.replace(current, **changes)  # type: ignore[type-var]
    push = set_policy(state, kind, new)
    if push is None:
        return {
            "details": details(sequence=state.sequence, changed_at=state.changed_at, owner=state.id)
        }
    stored = await call.runtime.store.push(push, creator=call.user_id)
    return {"details": details(stored)}


@service.rpc("SetPasswordComplexitySettings", request=SetPasswordComplexitySettingsRequest)
async def set_password_complexity_settings(
    call: Call, req: SetPasswordComplexitySettingsRequest
) -> dict[str, Any]:
    """Store the password complexity settings of the instance or of an org (its override).

    Fields left out keep the value that applies at that level now.
    """
    return await _set(call, req.ctx, PASSWORD_COMPLEXITY, password_complexity_changes(req))


@service.rpc("SetLockoutSettings", request=SetLockoutSettingsRequest)
async def set_lockout_settings(call: Call, req: SetLockoutSettingsRequest) -> dict[str, Any]:
    """Store the lockout settings of the instance or of an org (0 attempts: no lockout)."""
    return await _set(call, req.ctx, LOCKOUT, lockout_changes(req))


@service.rpc("SetLoginSettings", request=SetLoginSettingsRequest)
async def set_login_settings(call: Call, req: SetLoginSettingsRequest) -> dict[str, Any]:
    """Store the login settings of the instance or of an org (its override)."""
    return await _set(call, req.ctx, LOGIN, login_changes(req))


@service.rpc("SetDomainSettings", request=SetDomainSettingsRequest)
async def set_domain_settings(call: Call, req: SetDomainSettingsRequest) -> dict[str, Any]:
    """Store the domain settings of the instance or of an org (its override)."""
    return await _set(call, req.ctx, DOMAIN, domain_changes(req))


async def _delete(call: Call, req: OrganizationRequest, kind: PolicyKind) -> dict[str, Any]:
    if not req.organization_id:
        raise invalid("organizationId", "is required")
    state = await OrgPolicies.load(call.runtime.store, call.instance_id, req.organization_id)
    if not state.exists:
        raise not_found("organization")
    await call.require("policy.delete", org_id=state.id)
    push = remove_org_policy(state, kind)
    if push is None:
        words = kind.name.replace("_", " ")
        raise ConnectError(
            "not_found",
            f"the organization has no {words} settings of its own (it uses the instance's)",
        )
    stored = await call.runtime.store.push(push, creator=call.user_id)
    return {"details": details(stored)}


@service.rpc("DeleteOrganizationPasswordComplexitySettings", request=OrganizationRequest)
async def delete_organization_password_complexity_settings(
    call: Call, req: OrganizationRequest
) -> dict[str, Any]:
    """Drop an org's own password complexity settings: the instance's apply again."""
    return await _delete(call, req, PASSWORD_COMPLEXITY)


@service.rpc("DeleteOrganizationLockoutSettings", request=OrganizationRequest)
async def delete_organization_lockout_settings(
    call: Call, req: OrganizationRequest
) -> dict[str, Any]:
    """Drop an org's own lockout settings: the instance's apply again."""
    return await _delete(call, req, LOCKOUT)


@service.rpc("DeleteOrganizationLoginSettings", request=OrganizationRequest)
async def delete_organization_login_settings(
    call: Call, req: OrganizationRequest
) -> dict[str, Any]:
    """Drop an org's own login settings: the instance's apply again."""
    return await _delete(call, req, LOGIN)


@service.rpc("DeleteOrganizationDomainSettings", request=OrganizationRequest)
async def delete_organization_domain_settings(
    call: Call, req: OrganizationRequest
) -> dict[str, Any]:
    """Drop an org's own domain settings: the instance's apply again."""
    return await _delete(call, req, DOMAIN)


# Importing the modules declares the branding and security methods on `service` (after the
# helpers above).
from donjon.core.api import settings_branding, settings_security  # noqa: E402, F401
