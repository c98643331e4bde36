"""Policies (ZITADEL's "settings"): which one applies, and the password check.

A policy applies at three levels, the nearest winning:

1. the org's own policy, when the org stored one (an override);
2. the instance's policy, once one was stored;
3. the configured defaults, `DefaultInstance.PasswordComplexityPolicy`,
   `.LockoutPolicy`, `.LoginPolicy`, `.DomainPolicy`.

Commands and logins ask through the accessors, with the org of the user
concerned (or None for the instance level)::

    policy = await policies.password_complexity(conn, instance_id, org_id, settings)
    problems = policies.password_problems(policy, password)

`resolve` also says which level answered (for the SettingsService). The
values are in `policy_types`, the events and read model in `policy_events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity.policy_events import (
    DOMAIN,
    INSTANCE,
    LABEL,
    LOCKOUT,
    LOGIN,
    ORG,
    PASSWORD_COMPLEXITY,
    SECURITY,
    PolicyKind,
    policies_table,
)
from donjon.core.identity.policy_types import (
    PASSWORDLESS_ALLOWED,
    PASSWORDLESS_NOT_ALLOWED,
    DomainPolicy,
    LabelPolicy,
    Lockout,
    LoginPolicy,
    P,
    PasswordComplexity,
    Policy,
    SecurityPolicy,
    from_payload,
)

if TYPE_CHECKING:
    from donjon.core.settings import Settings

__all__ = [
    "DEFAULT",
    "INSTANCE",
    "ORG",
    "DomainPolicy",
    "LabelPolicy",
    "Lockout",
    "LoginPolicy",
    "PasswordComplexity",
    "Resolved",
    "SecurityPolicy",
    "default_password_complexity",
    "defaults",
    "domain_policy",
    "label_policy",
    "lockout",
    "login_policy",
    "password_complexity",
    "password_problems",
    "resolve",
    "security_policy",
]

# The level of the configured defaults (nothing stored yet).
DEFAULT = "default"


def default_password_complexity(settings: Settings) -> PasswordComplexity:
    """`DefaultInstance.PasswordComplexityPolicy`: what applies before anything is stored."""
    return cast(PasswordComplexity, defaults(PASSWORD_COMPLEXITY, settings))


def defaults(kind: PolicyKind, settings: Settings) -> Policy:
    """The configured default of a kind of policy (`DefaultInstance.*Policy`)."""
    config = settings.DefaultInstance
    if kind is PASSWORD_COMPLEXITY:
        c = config.PasswordComplexityPolicy
        return PasswordComplexity(
            min_length=c.MinLength,
            has_uppercase=c.HasUppercase,
            has_lowercase=c.HasLowercase,
            has_number=c.HasNumber,
            has_symbol=c.HasSymbol,
        )
    if kind is LOCKOUT:
        lo = config.LockoutPolicy
        return Lockout(
            max_password_attempts=lo.MaxPasswordAttempts, max_otp_attempts=lo.MaxOTPAttempts
        )
    if kind is LOGIN:
        li = config.LoginPolicy
        return LoginPolicy(
            allow_username_password=li.AllowUsernamePassword,
            allow_register=li.AllowRegister,
            allow_external_idp=li.AllowExternalIDP,
            force_mfa=li.ForceMFA,
            force_mfa_local_only=li.ForceMFALocalOnly,
            hide_password_reset=li.HidePasswordReset,
            ignore_unknown_usernames=li.IgnoreUnknownUsernames,
            allow_domain_discovery=li.AllowDomainDiscovery,
            disable_login_with_email=li.DisableLoginWithEmail,
            disable_login_with_phone=li.DisableLoginWithPhone,
            passwordless_type=(
                PASSWORDLESS_ALLOWED if li.PasswordlessType == 1 else PASSWORDLESS_NOT_ALLOWED
            ),
            default_redirect_uri=li.DefaultRedirectURI,
            password_check_lifetime=li.PasswordCheckLifetime,
            external_login_check_lifetime=li.ExternalLoginCheckLifetime,
            mfa_init_skip_lifetime=li.MfaInitSkipLifetime,
            second_factor_check_lifetime=li.SecondFactorCheckLifetime,
            multi_factor_check_lifetime=li.MultiFactorCheckLifetime,
        )
    if kind is DOMAIN:
        d = config.DomainPolicy
        return DomainPolicy(
            user_login_must_be_domain=d.UserLoginMustBeDomain,
            validate_org_domains=d.ValidateOrgDomains,
            smtp_sender_address_matches_instance_domain=d.SMTPSenderAddressMatchesInstanceDomain,
        )
    if kind is LABEL:
        # ZITADEL's default branding (the dataclass defaults); not configurable yet.
        return LabelPolicy()
    raise ValueError(f"unknown policy kind {kind.name}")


@dataclass(frozen=True)
class Resolved(Generic[P]):
    """The policy that applies, and where it comes from."""

    policy: P
    # org (the org's own), instance (stored by the instance) or default (configuration).
    level: str
    # The org or instance that stored it; the instance id for the defaults.
    owner_id: str
    sequence: int = 0
    created_at: datetime | None = None
    changed_at: datetime | None = None


async def resolve(
    conn: AsyncConnection,
    instance_id: str,
    org_id: str | None,
    kind: PolicyKind,
    settings: Settings,
) -> Resolved[Policy]:
    """The policy of `kind` for the org (None: for the instance), with its level."""
    t = policies_table
    owners = [instance_id] if not org_id or org_id == instance_id else [org_id, instance_id]
    rows = (
        await conn.execute(
            select(t).where(
                t.c.instance_id == instance_id, t.c.kind == kind.name, t.c.owner_id.in_(owners)
            )
        )
    ).all()
    by_owner = {r.owner_id: r for r in rows}
    for owner in owners:
        row = by_owner.get(owner)
        if row is not None:
            return Resolved(
                from_payload(kind.value_type, row.settings),
                ORG if row.owner_type == ORG else INSTANCE,
                owner,
                row.sequence,
                row.created_at,
                row.changed_at,
            )
    return Resolved(defaults(kind, settings), DEFAULT, instance_id)


async def password_complexity(
    conn: AsyncConnection, instance_id: str, org_id: str | None, settings: Settings
) -> PasswordComplexity:
    """The password complexity policy for users of `org_id` (None: the instance's)."""
    return cast(
        PasswordComplexity,
        (await resolve(conn, instance_id, org_id, PASSWORD_COMPLEXITY, settings)).policy,
    )


async def lockout(
    conn: AsyncConnection, instance_id: str, org_id: str | None, settings: Settings
) -> Lockout:
    """The lockout policy for users of `org_id`; 0 attempts means no lockout."""
    return cast(Lockout, (await resolve(conn, instance_id, org_id, LOCKOUT, settings)).policy)


async def login_policy(
    conn: AsyncConnection, instance_id: str, org_id: str | None, settings: Settings
) -> LoginPolicy:
    """The login policy for users of `org_id` (None: the instance's)."""
    return cast(LoginPolicy, (await resolve(conn, instance_id, org_id, LOGIN, settings)).policy)


async def domain_policy(
    conn: AsyncConnection, instance_id: str, org_id: str | None, settings: Settings
) -> DomainPolicy:
    """The domain policy for `org_id` (None: the instance's)."""
    return cast(DomainPolicy, (await resolve(conn, instance_id, org_id, DOMAIN, settings)).policy)


async def label_policy(
    conn: AsyncConnection, instance_id: str, org_id: str | None, settings: Settings
) -> LabelPolicy:
    """The branding for `org_id`: its own label policy, else the instance's (None: the
    instance's)."""
    return cast(LabelPolicy, (await resolve(conn, instance_id, org_id, LABEL, settings)).policy)


async def security_policy(conn: AsyncConnection, instance_id: str) -> Resolved[SecurityPolicy]:
    """The instance's security policy (instance level only); all off until one is stored."""
    t = policies_table
    row = (
        await conn.execute(
            select(t).where(
                t.c.instance_id == instance_id, t.c.owner_id == instance_id, t.c.kind == SECURITY
            )
        )
    ).first()
    if row is None:
        return Resolved(SecurityPolicy(), DEFAULT, instance_id)
    return Resolved(
        from_payload(SecurityPolicy, row.settings),
        INSTANCE,
        instance_id,
        row.sequence,
        row.created_at,
        row.changed_at,
    )


def password_problems(policy: PasswordComplexity, password: str) -> list[str]:
    """What `password` lacks under `policy`, as phrases ("has at least 8 characters")."""
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"has at least {policy.min_length} characters")
    if policy.has_uppercase and not any(c.isupper() for c in password):
        problems.append("has an upper-case letter")
    if policy.has_lowercase and not any(c.islower() for c in password):
        problems.append("has a lower-case letter")
    if policy.has_number and not any(c.isdigit() for c in password):
        problems.append("has a digit")
    if policy.has_symbol and not any(not c.isalnum() for c in password):
        problems.append("has a symbol")
    return problems
