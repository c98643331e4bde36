"""The values of the policies (ZITADEL's "settings"), as commands and logins use them.

Each policy is a frozen dataclass whose field names are also its events'
payload keys (snake_case). Durations are `timedelta` here and whole seconds
in payloads; tuples are lists in payloads (`to_payload` / `from_payload`).
The field defaults are ZITADEL's; the defaults that apply in an instance are
the configured ones (`DefaultInstance.*Policy`, see `policies.defaults`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, get_type_hints

# Second factors and multi factors, in donjon's words (the API maps ZITADEL's enums).
SECOND_FACTORS = ("otp", "u2f", "otp_email", "otp_sms", "recovery_codes")
MULTI_FACTORS = ("u2f_with_verification",)
PASSWORDLESS_ALLOWED, PASSWORDLESS_NOT_ALLOWED = "allowed", "not_allowed"

# bcrypt reads 72 bytes at most; ZITADEL refuses longer minimums for that reason.
MAX_MIN_LENGTH = 72


@dataclass(frozen=True)
class PasswordComplexity:
    """What a new password must contain."""

    min_length: int = 8
    has_uppercase: bool = True
    has_lowercase: bool = True
    has_number: bool = True
    has_symbol: bool = True


@dataclass(frozen=True)
class Lockout:
    """After how many failed checks a user is locked; 0 means never."""

    max_password_attempts: int = 0
    max_otp_attempts: int = 0


@dataclass(frozen=True)
class LoginPolicy:
    """How users may log in, and how long each check counts."""

    allow_username_password: bool = True
    allow_register: bool = True
    allow_external_idp: bool = True
    force_mfa: bool = False
    force_mfa_local_only: bool = False
    hide_password_reset: bool = False
    ignore_unknown_usernames: bool = False
    allow_domain_discovery: bool = True
    disable_login_with_email: bool = False
    disable_login_with_phone: bool = False
    passwordless_type: str = PASSWORDLESS_ALLOWED
    default_redirect_uri: str = ""
    password_check_lifetime: timedelta = timedelta(hours=240)
    external_login_check_lifetime: timedelta = timedelta(hours=240)
    mfa_init_skip_lifetime: timedelta = timedelta(hours=720)
    second_factor_check_lifetime: timedelta = timedelta(hours=18)
    multi_factor_check_lifetime: timedelta = timedelta(hours=12)
    # ZITADEL's setup enables TOTP and U2F as second factors, U2F with PIN as multi factor.
    second_factors: tuple[str, ...] = ("otp", "u2f")
    multi_factors: tuple[str, ...] = ("u2f_with_verification",)

    @property
    def passwordless_allowed(self) -> bool:
        return self.passwordless_type == PASSWORDLESS_ALLOWED


@dataclass(frozen=True)
class DomainPolicy:
    """How org domains relate to login names and verification."""

    # Login names are `username@<org domain>` (else the bare user name, unique per instance).
    user_login_must_be_domain: bool = False
    # Org domains must be verified (DNS or HTTP challenge) before they count.
    validate_org_domains: bool = False
    smtp_sender_address_matches_instance_domain: bool = False


@dataclass(frozen=True)
class SecurityPolicy:
    """The instance's security settings (ZITADEL's security policy; instance level only).

    `enable_impersonation` lets token exchange (RFC 8693) issue tokens for a
    user to an actor holding an `*_IMPERSONATOR` role; off by default.
    """

    # Whether the hosted pages may be embedded in an iframe, and by which origins.
    enable_iframe_embedding: bool = False
    allowed_origins: tuple[str, ...] = ()
    enable_impersonation: bool = False


@dataclass(frozen=True)
class LabelPolicy:
    """Branding (ZITADEL's label policy): the hosted pages' colours, logo and icon.

    Colours are `#rgb`, `#rrggbb` or `#rrggbbaa` (`label_colors.check_color`);
    the defaults are ZITADEL's. `logo`, `icon` and their `_dark` variants are
    asset ids (`label_assets`: content-addressed uploads), empty for none.
    """

    primary_color: str = "#5469d4"
    background_color: str = "#fafafa"
    warn_color: str = "#cd3d56"
    font_color: str = "#000000"
    primary_color_dark: str = "#2073c4"
    background_color_dark: str = "#111827"
    warn_color_dark: str = "#ff3b5b"
    font_color_dark: str = "#ffffff"
    # Login names are shown without their `@org-domain` suffix.
    hide_login_name_suffix: bool = False
    # No "powered by donjon" under the pages.
    disable_watermark: bool = False
    logo: str = ""
    logo_dark: str = ""
    icon: str = ""
    icon_dark: str = ""


#: The colour fields of a label policy (light, then dark).
LABEL_COLORS = (
    "primary_color",
    "background_color",
    "warn_color",
    "font_color",
    "primary_color_dark",
    "background_color_dark",
    "warn_color_dark",
    "font_color_dark",
)
#: The image fields of a label policy, by the name in asset paths (`logo/dark` → `logo_dark`).
LABEL_ASSETS = ("logo", "logo_dark", "icon", "icon_dark")
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def is_color(value: str) -> bool:
    """A hex colour a page may put in its CSS as it is (nothing else can reach a style)."""
    return bool(_COLOR.fullmatch(value))


Policy = PasswordComplexity | Lockout | LoginPolicy | DomainPolicy | SecurityPolicy | LabelPolicy
P = TypeVar(
    "P", PasswordComplexity, Lockout, LoginPolicy, DomainPolicy, SecurityPolicy, LabelPolicy
)


def to_payload(policy: Policy) -> dict[str, Any]:
    """The policy as an event payload: durations in whole seconds, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(policy):
        value = getattr(policy, f.name)
        if isinstance(value, timedelta):
            value = int(value.total_seconds())
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def from_payload(cls: type[P], payload: dict[str, Any]) -> P:
    """The policy of a payload; keys it lacks keep the field defaults (older events)."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in payload:
            continue
        value = payload[f.name]
        if hints[f.name] is timedelta:
            value = timedelta(seconds=value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)
