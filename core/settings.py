"""The typed shape of donjon's configuration.

`defaults.yaml` holds the values and their documentation; these dataclasses
hold the types and the checks a value's type cannot express (ranges, URL
shapes). A test keeps the two in step: every key in the file is a field here
and every field has a default in the file.

A check that fails raises `InvalidSetting(field, expected, value)`; the loader
(`donjon.core.config`) turns it into a ConfigError naming the full key, such
as `Setup.LeaseDuration: expected a duration above 0s, got '0s'`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class InvalidSetting(ValueError):
    """A field of a settings dataclass holds a value outside what it accepts."""

    def __init__(self, key: str, expected: str, value: Any) -> None:
        super().__init__(f"{key}: expected {expected}, got {value!r}")
        self.key = key
        self.expected = expected
        self.value = value


def _at_least(owner: object, name: str, minimum: int) -> None:
    value = getattr(owner, name)
    if value is not None and value < minimum:
        raise InvalidSetting(name, f"an integer of at least {minimum}", value)


def _port(owner: object, name: str) -> None:
    value = getattr(owner, name)
    if not 1 <= value <= 65535:
        raise InvalidSetting(name, "a port number from 1 to 65535", value)


def _positive_duration(owner: object, name: str, *, allow_zero: bool = False) -> None:
    value: timedelta = getattr(owner, name)
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        expected = "a duration of 0s or more" if allow_zero else "a duration above 0s"
        raise InvalidSetting(name, expected, _format_duration(value))


def _format_duration(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def _postgres_url(owner: object, name: str) -> None:
    value: str = getattr(owner, name)
    if not value:
        return
    expected = "a URL such as postgresql://user:password@host:5432/database"
    try:
        url = make_url(value)
    except ArgumentError:
        raise InvalidSetting(name, expected, _hide_password(value)) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidSetting(name, expected, _hide_password(value))


def _hide_password(value: str) -> str:
    try:
        return make_url(value).render_as_string(hide_password=True)
    except ArgumentError:
        return value if "@" not in value else "<hidden>"


@dataclass
class LogSettings:
    Level: Literal["debug", "info", "warn", "warning", "error"]
    Format: Literal["text", "json"]


@dataclass
class SqliteSettings:
    Path: str


@dataclass
class PostgresAdminSettings:
    DSN: str

    def __post_init__(self) -> None:
        _postgres_url(self, "DSN")


@dataclass
class PostgresSettings:
    DSN: str
    MaxOpenConns: int
    MaxOverflowConns: int
    MaxConnLifetime: timedelta
    Admin: PostgresAdminSettings

    def __post_init__(self) -> None:
        _postgres_url(self, "DSN")
        _at_least(self, "MaxOpenConns", 1)
        _at_least(self, "MaxOverflowConns", 0)
        _positive_duration(self, "MaxConnLifetime")


@dataclass
class DatabaseSettings:
    sqlite: SqliteSettings
    postgres: PostgresSettings

    @property
    def kind(self) -> Literal["sqlite", "postgres"]:
        return "postgres" if self.postgres.DSN else "sqlite"


@dataclass
class EventstoreSettings:
    MaxRetries: int

    def __post_init__(self) -> None:
        _at_least(self, "MaxRetries", 0)


@dataclass
class ProjectionCustomization:
    """Overrides for one projection; None keeps the value of `Projections`."""

    BulkLimit: int | None = None
    RebuildBulkLimit: int | None = None
    MaxFailureCount: int | None = None

    def __post_init__(self) -> None:
        for name in ("BulkLimit", "RebuildBulkLimit", "MaxFailureCount"):
            _at_least(self, name, 1)


@dataclass
class ProjectionSettings:
    RequeueEvery: timedelta
    RetryFailedAfter: timedelta
    MaxFailureCount: int
    BulkLimit: int
    RebuildBulkLimit: int
    Customizations: dict[str, ProjectionCustomization]

    def __post_init__(self) -> None:
        _positive_duration(self, "RequeueEvery")
        _positive_duration(self, "RetryFailedAfter", allow_zero=True)
        for name in ("MaxFailureCount", "BulkLimit", "RebuildBulkLimit"):
            _at_least(self, name, 1)

    def customization(self, name: str) -> ProjectionCustomization | None:
        """The Customizations entry of projection `name` (its key matched case-insensitively)."""
        if name in self.Customizations:
            return self.Customizations[name]
        for key, custom in self.Customizations.items():
            if key.lower() == name.lower():
                return custom
        return None

    def bulk_limit(self, name: str) -> int:
        custom = self.customization(name)
        return (custom and custom.BulkLimit) or self.BulkLimit

    def rebuild_bulk_limit(self, name: str) -> int:
        custom = self.customization(name)
        return (custom and custom.RebuildBulkLimit) or self.RebuildBulkLimit

    def max_failure_count(self, name: str) -> int:
        custom = self.customization(name)
        return (custom and custom.MaxFailureCount) or self.MaxFailureCount


@dataclass
class SetupSettings:
    LeaseDuration: timedelta

    def __post_init__(self) -> None:
        _positive_duration(self, "LeaseDuration")


@dataclass
class FirstInstanceHuman:
    UserName: str
    FirstName: str
    LastName: str
    Email: str
    Password: str
    PasswordChangeRequired: bool

    def __post_init__(self) -> None:
        if not self.UserName.strip():
            raise InvalidSetting("UserName", "a user name", self.UserName)
        if self.Email and "@" not in self.Email:
            raise InvalidSetting("Email", "an email address such as admin@example.com", self.Email)
        if not self.Password:
            raise InvalidSetting("Password", "the first administrator's password", self.Password)


@dataclass
class FirstInstanceMachineUser:
    Username: str
    Name: str


@dataclass
class FirstInstancePat:
    Path: str
    ExpirationDate: str


@dataclass
class FirstInstanceMachine:
    Machine: FirstInstanceMachineUser
    Pat: FirstInstancePat


@dataclass
class FirstInstanceOrg:
    Name: str
    Human: FirstInstanceHuman
    Machine: FirstInstanceMachine


@dataclass
class FirstInstanceSettings:
    InstanceName: str
    DefaultLanguage: str
    Org: FirstInstanceOrg


@dataclass
class PasswordComplexityPolicySettings:
    MinLength: int
    HasUppercase: bool
    HasLowercase: bool
    HasNumber: bool
    HasSymbol: bool

    def __post_init__(self) -> None:
        if not 1 <= self.MinLength <= 72:
            raise InvalidSetting("MinLength", "an integer from 1 to 72", self.MinLength)


@dataclass
class LockoutPolicySettings:
    MaxPasswordAttempts: int
    MaxOTPAttempts: int

    def __post_init__(self) -> None:
        _at_least(self, "MaxPasswordAttempts", 0)
        _at_least(self, "MaxOTPAttempts", 0)


@dataclass
class LoginPolicySettings:
    AllowUsernamePassword: bool
    AllowRegister: bool
    AllowExternalIDP: bool
    ForceMFA: bool
    ForceMFALocalOnly: bool
    HidePasswordReset: bool
    IgnoreUnknownUsernames: bool
    AllowDomainDiscovery: bool
    DisableLoginWithEmail: bool
    DisableLoginWithPhone: bool
    PasswordlessType: int
    DefaultRedirectURI: str
    PasswordCheckLifetime: timedelta
    ExternalLoginCheckLifetime: timedelta
    MfaInitSkipLifetime: timedelta
    SecondFactorCheckLifetime: timedelta
    MultiFactorCheckLifetime: timedelta

    def __post_init__(self) -> None:
        if self.PasswordlessType not in (0, 1):
            raise InvalidSetting(
                "PasswordlessType", "1 (passkeys allowed) or 0 (not allowed)", self.PasswordlessType
            )
        for name in (
            "PasswordCheckLifetime",
            "ExternalLoginCheckLifetime",
            "MfaInitSkipLifetime",
            "SecondFactorCheckLifetime",
            "MultiFactorCheckLifetime",
        ):
            _positive_duration(self, name, allow_zero=True)


@dataclass
class DomainPolicySettings:
    UserLoginMustBeDomain: bool
    ValidateOrgDomains: bool
    SMTPSenderAddressMatchesInstanceDomain: bool


@dataclass
class DefaultInstanceSettings:
    """The policies every instance starts with (until it stores its own)."""

    PasswordComplexityPolicy: PasswordComplexityPolicySettings
    LockoutPolicy: LockoutPolicySettings
    LoginPolicy: LoginPolicySettings
    DomainPolicy: DomainPolicySettings


@dataclass
class PasswordHashSettings:
    Algorithm: Literal["argon2id"]
    Time: int
    Memory: int
    Threads: int
    MaxConcurrent: int

    def __post_init__(self) -> None:
        _at_least(self, "Time", 1)
        _at_least(self, "Memory", 8 * self.Threads if self.Threads > 0 else 8)
        _at_least(self, "Threads", 1)
        _at_least(self, "MaxConcurrent", 1)


@dataclass
class PasswordHasherSettings:
    Hasher: PasswordHashSettings


@dataclass
class SystemDefaultsSettings:
    PasswordHasher: PasswordHasherSettings


@dataclass
class MetricsSettings:
    Enabled: bool


@dataclass
class ActionsHTTPSettings:
    AllowedHosts: list[str]


@dataclass
class ActionsSettings:
    HTTP: ActionsHTTPSettings
    MaxAttempts: int
    RetryFirstAfter: timedelta
    RetryMaxDelay: timedelta
    Concurrency: int
    BatchSize: int
    RequeueEvery: timedelta
    LeaseMargin: timedelta
    ExecutionCacheTTL: timedelta

    def __post_init__(self) -> None:
        _at_least(self, "MaxAttempts", 1)
        _at_least(self, "Concurrency", 1)
        _at_least(self, "BatchSize", 1)
        _positive_duration(self, "RetryFirstAfter")
        _positive_duration(self, "RetryMaxDelay")
        _positive_duration(self, "RequeueEvery")
        _positive_duration(self, "LeaseMargin")
        _positive_duration(self, "ExecutionCacheTTL")


@dataclass
class Settings:
    Log: LogSettings
    Port: int
    ListenAddress: str
    ShutdownTimeout: timedelta
    ExternalDomain: str
    ExternalPort: int
    ExternalSecure: bool
    Database: DatabaseSettings
    Eventstore: EventstoreSettings
    Projections: ProjectionSettings
    Setup: SetupSettings
    FirstInstance: FirstInstanceSettings
    DefaultInstance: DefaultInstanceSettings
    SystemDefaults: SystemDefaultsSettings
    Metrics: MetricsSettings
    Actions: ActionsSettings
    # Raw per-plugin sections; each plugin's own keys are checked against the
    # schema it registers (see donjon.core.plugins).
    Plugins: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _port(self, "Port")
        _port(self, "ExternalPort")
        _positive_duration(self, "ShutdownTimeout", allow_zero=True)
        domain = self.ExternalDomain
        ipv6 = domain.startswith("[") and domain.endswith("]")
        if (
            not domain
            or (not ipv6 and any(c in domain for c in ":/ "))
            or domain != domain.strip(".")
        ):
            # The classic mistake is a URL (https://auth.example.com:443):
            # scheme and port have their own keys.
            raise InvalidSetting(
                "ExternalDomain",
                "a host name such as auth.example.com (no scheme or port: see ExternalSecure"
                " and ExternalPort)",
                domain,
            )

    @property
    def external_url(self) -> str:
        scheme = "https" if self.ExternalSecure else "http"
        default_port = 443 if self.ExternalSecure else 80
        port = "" if self.ExternalPort == default_port else f":{self.ExternalPort}"
        return f"{scheme}://{self.ExternalDomain}{port}"
