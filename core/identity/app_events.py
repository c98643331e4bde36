"""The events of applications, on their project's aggregate (names as ZITADEL's).

`project.application.{added,changed,deactivated,reactivated,removed}` name an app
and its state; `project.application.config.{oidc,saml,api}.{added,changed}` give
its kind and settings, `...secret.changed` a new client secret digest. The read
model, write model and commands that use them are in `apps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from donjon.core.events import Event
from donjon.core.identity.projects import AGGREGATE, PartialEvent


@dataclass(frozen=True)
class AppAdded(Event):
    TYPE = "project.application.added"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    name: str


@dataclass(frozen=True)
class AppChanged(Event):
    TYPE = "project.application.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    name: str


@dataclass(frozen=True)
class AppDeactivated(Event):
    TYPE = "project.application.deactivated"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str


@dataclass(frozen=True)
class AppReactivated(Event):
    TYPE = "project.application.reactivated"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str


@dataclass(frozen=True)
class AppRemoved(Event):
    TYPE = "project.application.removed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    name: str = ""


@dataclass(frozen=True)
class OIDCConfigAdded(Event):
    TYPE = "project.application.config.oidc.added"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    client_id: str
    # SHA-256 of the client secret; empty for public and private_key_jwt clients.
    client_secret_digest: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    response_types: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=list)
    app_type: str = "web"
    auth_method_type: str = "basic"
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    oidc_version: str = "1.0"
    dev_mode: bool = False
    access_token_type: str = "bearer"
    access_token_role_assertion: bool = False
    id_token_role_assertion: bool = False
    id_token_userinfo_assertion: bool = False
    clock_skew_ms: int = 0
    additional_origins: list[str] = field(default_factory=list)
    skip_native_app_success_page: bool = False
    back_channel_logout_uri: str = ""
    login_version: int = 0
    login_base_uri: str = ""
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False


@dataclass(frozen=True)
class OIDCConfigChanged(PartialEvent):
    TYPE = "project.application.config.oidc.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str = ""
    redirect_uris: list[str] | None = None
    response_types: list[str] | None = None
    grant_types: list[str] | None = None
    app_type: str | None = None
    auth_method_type: str | None = None
    post_logout_redirect_uris: list[str] | None = None
    oidc_version: str | None = None
    dev_mode: bool | None = None
    access_token_type: str | None = None
    access_token_role_assertion: bool | None = None
    id_token_role_assertion: bool | None = None
    id_token_userinfo_assertion: bool | None = None
    clock_skew_ms: int | None = None
    additional_origins: list[str] | None = None
    skip_native_app_success_page: bool | None = None
    back_channel_logout_uri: str | None = None
    login_version: int | None = None
    login_base_uri: str | None = None
    require_pushed_authorization_requests: bool | None = None
    dpop_bound_access_tokens: bool | None = None


@dataclass(frozen=True)
class OIDCConfigSecretChanged(Event):
    TYPE = "project.application.config.oidc.secret.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    client_secret_digest: str


@dataclass(frozen=True)
class SAMLConfigAdded(Event):
    TYPE = "project.application.config.saml.added"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    # Empty when only a metadata URL was given (the SAML plugin fetches it).
    entity_id: str = ""
    metadata: str = ""
    metadata_url: str = ""
    login_version: int = 0
    login_base_uri: str = ""


@dataclass(frozen=True)
class SAMLConfigChanged(PartialEvent):
    TYPE = "project.application.config.saml.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str = ""
    entity_id: str | None = None
    metadata: str | None = None
    metadata_url: str | None = None
    login_version: int | None = None
    login_base_uri: str | None = None


@dataclass(frozen=True)
class APIConfigAdded(Event):
    TYPE = "project.application.config.api.added"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    client_id: str
    client_secret_digest: str = ""
    auth_method_type: str = "basic"


@dataclass(frozen=True)
class APIConfigChanged(PartialEvent):
    TYPE = "project.application.config.api.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str = ""
    auth_method_type: str | None = None


@dataclass(frozen=True)
class APIConfigSecretChanged(Event):
    TYPE = "project.application.config.api.secret.changed"
    AGGREGATE_TYPE = AGGREGATE
    app_id: str
    client_secret_digest: str


EVENT_TYPES: list[type[Event]] = [
    AppAdded,
    AppChanged,
    AppDeactivated,
    AppReactivated,
    AppRemoved,
    OIDCConfigAdded,
    OIDCConfigChanged,
    OIDCConfigSecretChanged,
    SAMLConfigAdded,
    SAMLConfigChanged,
    APIConfigAdded,
    APIConfigChanged,
    APIConfigSecretChanged,
]
