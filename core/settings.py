"""The typed shape of donjon's configuration.

`defaults.yaml` holds the values and their documentation; these dataclasses
hold the types. A test keeps the two in step: every key in the file is a field
here and every field has a default in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal


@dataclass
class LogSettings:
    Level: Literal["debug", "info", "warning", "error"]
    Format: Literal["text", "json"]


@dataclass
class SqliteSettings:
    Path: str


@dataclass
class PostgresAdminSettings:
    DSN: str


@dataclass
class PostgresSettings:
    DSN: str
    MaxOpenConns: int
    MaxOverflowConns: int
    MaxConnLifetime: timedelta
    Admin: PostgresAdminSettings


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


@dataclass
class ProjectionCustomization:
    BulkLimit: int | None = None
    RebuildBulkLimit: int | None = None
    MaxFailureCount: int | None = None


@dataclass
class ProjectionSettings:
    RequeueEvery: timedelta
    RetryFailedAfter: timedelta
    MaxFailureCount: int
    BulkLimit: int
    RebuildBulkLimit: int
    Customizations: dict[str, ProjectionCustomization]

    def bulk_limit(self, name: str) -> int:
        custom = self.Customizations.get(name)
        return (custom and custom.BulkLimit) or self.BulkLimit

    def rebuild_bulk_limit(self, name: str) -> int:
        custom = self.Customizations.get(name)
        return (custom and custom.RebuildBulkLimit) or self.RebuildBulkLimit

    def max_failure_count(self, name: str) -> int:
        custom = self.Customizations.get(name)
        return (custom and custom.MaxFailureCount) or self.MaxFailureCount


@dataclass
class SetupSettings:
    LeaseDuration: timedelta


@dataclass
class FirstInstanceOrg:
    Name: str


@dataclass
class FirstInstanceSettings:
    InstanceName: str
    DefaultLanguage: str
    Org: FirstInstanceOrg


@dataclass
class MetricsSettings:
    Enabled: bool


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
    Metrics: MetricsSettings
    # Raw per-plugin sections; each plugin's own keys are checked against the
    # schema it registers (see donjon.core.plugins).
    Plugins: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def external_url(self) -> str:
        scheme = "https" if self.ExternalSecure else "http"
        default_port = 443 if self.ExternalSecure else 80
        port = "" if self.ExternalPort == default_port else f":{self.ExternalPort}"
        return f"{scheme}://{self.ExternalDomain}{port}"
