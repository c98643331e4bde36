"""Applications: the OIDC, SAML and API clients of a project.

Apps live on their project's aggregate, as in ZITADEL: `project.application.added`
names the app, then one `project.application.config.{oidc,saml,api}.added`
gives its kind and settings (see `app_config` for the rules they follow).
Client ids are unique in the instance (unique value `client_id`), SAML entity
ids too (`saml_entity_id`); client secrets are machine-generated (256 bits,
`secrets.new_secret`), shown once and stored only as SHA-256 digests.

The `apps` read model holds each app with its project's id and org, so a
protocol plugin finds a client in one lookup: `app_by_client_id` (with the
project's settings joined), then `check_client_secret`. An app can be used
only while both it and its project are active (`app_state`, `project_state`).

The events are in `app_events`; here the `apps` read model, the write model
`AppState`, the commands and the reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Column, Integer, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.events import AddUnique, AggregateChanges, Event, RemoveUnique, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import secrets
from donjon.core.identity.app_config import OIDC_DEFAULTS, SECRET_METHODS
from donjon.core.identity.app_events import (
    APIConfigAdded,
    APIConfigChanged,
    APIConfigSecretChanged,
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
)
from donjon.core.identity.app_keys import AppKeyAdded, AppKeyRemoved
from donjon.core.identity.projects import (
    AGGREGATE,
    UNIQUE_APP_ID,
    UNIQUE_CLIENT_ID,
    UNIQUE_ENTITY_ID,
    ProjectState,
    projects_table,
)
from donjon.core.identity.writemodel import applies
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import Remove, RemoveWhere

ACTIVE, INACTIVE, REMOVED = "active", "inactive", "removed"
OIDC, SAML, API = "oidc", "saml", "api"

APP_ID_TAKEN = "Errors.Project.App.AlreadyExists"
CLIENT_ID_TAKEN = "Errors.Project.App.ClientID.AlreadyExists"
ENTITY_ID_TAKEN = "Errors.Project.App.SAMLEntityIDAlreadyExists"
MAX_NAME = 200


CONFIG_ADDED = {OIDC: OIDCConfigAdded, SAML: SAMLConfigAdded, API: APIConfigAdded}
CONFIG_CHANGED = {OIDC: OIDCConfigChanged, SAML: SAMLConfigChanged, API: APIConfigChanged}
SECRET_CHANGED = {OIDC: OIDCConfigSecretChanged, API: APIConfigSecretChanged}

apps_table = Table(
    "apps",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("project_id", Text, nullable=False, index=True),
    Column("resource_owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("state", Text, nullable=False),
    # oidc | saml | api; empty until the configuration event.
    Column("type", Text, nullable=False),
    Column("client_id", Text, nullable=True, index=True),
    Column("client_secret_digest", Text, nullable=False),
    # oidc, and api for auth_method_type
    Column("redirect_uris", JSON, nullable=False),
    Column("response_types", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("app_type", Text, nullable=False),
    Column("auth_method_type", Text, nullable=False),
    Column("post_logout_redirect_uris", JSON, nullable=False),
    Column("oidc_version", Text, nullable=False),
    Column("dev_mode", Boolean, nullable=False),
    Column("access_token_type", Text, nullable=False),
    Column("access_token_role_assertion", Boolean, nullable=False),
    Column("id_token_role_assertion", Boolean, nullable=False),
    Column("id_token_userinfo_assertion", Boolean, nullable=False),
    Column("clock_skew_ms", Integer, nullable=False),
    Column("additional_origins", JSON, nullable=False),
    Column("skip_native_app_success_page", Boolean, nullable=False),
    Column("back_channel_logout_uri", Text, nullable=False),
    Column("login_version", Integer, nullable=False),
    Column("login_base_uri", Text, nullable=False),
    Column("require_pushed_authorization_requests", Boolean, nullable=False),
    Column("dpop_bound_access_tokens", Boolean, nullable=False),
    # saml
    Column("entity_id", Text, nullable=True, index=True),
    Column("metadata", Text, nullable=False),
    Column("metadata_url", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
)

_ROW_DEFAULTS: dict[str, Any] = {
    **OIDC_DEFAULTS,
    "response_types": [],
    "grant_types": [],
    "app_type": "",
    "auth_method_type": "",
    "access_token_type": "",
    "oidc_version": "",
    "type": "",
    "client_id": None,
    "client_secret_digest": "",
    "entity_id": None,
    "metadata": "",
    "metadata_url": "",
}
_CONFIG_COLUMNS = frozenset(_ROW_DEFAULTS) - {"type"}


class AppsProjection(AggregateRows):
    """The `apps` read model: every app with its kind's settings."""

    name = "apps"
    # 2: require_pushed_authorization_requests
    # 3: dpop_bound_access_tokens.
    version = 3
    inline = True
    tables = (apps_table,)

    row_table = apps_table

    @staticmethod
    def _key(e: StoredEvent) -> dict[str, str]:
        """An app's row: apps are events of their project's aggregate."""
        return {"instance_id": e.instance_id, "id": e.payload["app_id"]}

    @handles(AppAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            self._new_row(
                e,
                {
                    **_ROW_DEFAULTS,
                    "project_id": e.aggregate_id,
                    "resource_owner": e.owner,
                    "name": e.payload["name"],
                    "state": ACTIVE,
                },
            )
        ]

    @handles(AppChanged.TYPE)
    def changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, name=e.payload["name"])]

    @handles(AppDeactivated.TYPE)
    def deactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=INACTIVE)]

    @handles(AppReactivated.TYPE)
    def reactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=ACTIVE)]

    @handles(AppRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Remove(apps_table, self._key(e))]

    @staticmethod
    def _config(e: StoredEvent) -> dict[str, Any]:
        return {k: v for k, v in e.payload.items() if k in _CONFIG_COLUMNS and v is not None}

    @handles(OIDCConfigAdded.TYPE)
    def oidc_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, type=OIDC, **self._config(e))]

    @handles(SAMLConfigAdded.TYPE)
    def saml_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        config = self._config(e)
        config["entity_id"] = config.get("entity_id") or None
        return [self._touch(e, type=SAML, **config)]

    @handles(APIConfigAdded.TYPE)
    def api_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, type=API, **self._config(e))]

    @handles(
        OIDCConfigChanged.TYPE,
        SAMLConfigChanged.TYPE,
        APIConfigChanged.TYPE,
        OIDCConfigSecretChanged.TYPE,
        APIConfigSecretChanged.TYPE,
    )
    def config_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        config = self._config(e)
        if "entity_id" in config:
            config["entity_id"] = config["entity_id"] or None
        return [self._touch(e, **config)]

    @handles("project.removed")
    def project_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(apps_table, {"instance_id": e.instance_id, "project_id": e.aggregate_id})
        ]

    @handles("org.removed")
    def org_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            RemoveWhere(
                apps_table, {"instance_id": e.instance_id, "resource_owner": e.aggregate_id}
            )
        ]


class AppState(ProjectState):
    """One app as its commands see it, with its project (an app's events are the project's).

    `app` holds the app's settings under the event payloads' names, plus
    `name`, `state` and `type`.
    """

    def __init__(self, instance_id: str, aggregate_id: str, app_id: str = "") -> None:
        super().__init__(instance_id, aggregate_id)
        self.app_id = app_id
        self.app: dict[str, Any] = {}
        #: The app's keys (`app_keys`): key id -> expiration (RFC 3339).
        self.app_keys: dict[str, str] = {}

    @classmethod
    async def load_app(cls, store: Any, instance_id: str, project_id: str, app_id: str) -> AppState:
        state = cls(instance_id, project_id, app_id)
        for event in await store.aggregate_events(instance_id, AGGREGATE, project_id):
            state.apply(event)
        return state

    @property
    def app_exists(self) -> bool:
        return self.exists and self.app.get("state") in (ACTIVE, INACTIVE)

    @property
    def app_type(self) -> str:
        return str(self.app.get("type", ""))

    def _mine(self, e: StoredEvent) -> bool:
        return e.payload.get("app_id") == self.app_id

    @applies(AppAdded.TYPE)
    def on_app_added(self, e: StoredEvent) -> None:
        super().on_app_added(e)
        if self._mine(e):
            self.app = {"name": e.payload["name"], "state": ACTIVE, "type": ""}

    @applies(AppChanged.TYPE)
    def on_app_changed(self, e: StoredEvent) -> None:
        if self._mine(e):
            self.app["name"] = e.payload["name"]

    @applies(AppDeactivated.TYPE)
    def on_app_deactivated(self, e: StoredEvent) -> None:
        if self._mine(e):
            self.app["state"] = INACTIVE

    @applies(AppReactivated.TYPE)
    def on_app_reactivated(self, e: StoredEvent) -> None:
        if self._mine(e):
            self.app["state"] = ACTIVE

    @applies(AppRemoved.TYPE)
    def on_app_removed(self, e: StoredEvent) -> None:
        super().on_app_removed(e)
        if self._mine(e):
            self.app["state"] = REMOVED

    @applies(OIDCConfigAdded.TYPE, APIConfigAdded.TYPE)
    def on_client_added(self, e: StoredEvent) -> None:
        super().on_client_added(e)
        self._config(e, OIDC if e.type == OIDCConfigAdded.TYPE else API)

    @applies(SAMLConfigAdded.TYPE, SAMLConfigChanged.TYPE)
    def on_saml(self, e: StoredEvent) -> None:
        super().on_saml(e)
        self._config(e, SAML)

    @applies(
        OIDCConfigChanged.TYPE,
        APIConfigChanged.TYPE,
        OIDCConfigSecretChanged.TYPE,
        APIConfigSecretChanged.TYPE,
    )
    def on_config_changed(self, e: StoredEvent) -> None:
        self._config(e, None)

    @applies(AppKeyAdded.TYPE)
    def on_key_added(self, e: StoredEvent) -> None:
        if self._mine(e):
            self.app_keys[e.payload["key_id"]] = e.payload["expiration"]

    @applies(AppKeyRemoved.TYPE)
    def on_key_removed(self, e: StoredEvent) -> None:
        if self._mine(e):
            self.app_keys.pop(e.payload["key_id"], None)

    def _config(self, e: StoredEvent, kind: str | None) -> None:
        if not self._mine(e):
            return
        self.app.update({k: v for k, v in e.payload.items() if k != "app_id" and v is not None})
        if kind is not None:
            self.app["type"] = kind


# -- commands ---------------------------------------------------------------------------


def check_app_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return name


def add_app(
    project: ProjectState, app_id: str, name: str, kind: str, config: dict[str, Any]
) -> AggregateChanges:
    """A new app of `kind` with its configuration (already checked).

    `config` has the configuration event's fields (`client_id` and
    `client_secret_digest` included for OIDC and API apps).
    """
    unique: list[AddUnique | RemoveUnique] = [AddUnique(UNIQUE_APP_ID, app_id, APP_ID_TAKEN)]
    if config.get("client_id"):
        unique.append(AddUnique(UNIQUE_CLIENT_ID, config["client_id"], CLIENT_ID_TAKEN))
    if config.get("entity_id"):
        unique.append(AddUnique(UNIQUE_ENTITY_ID, config["entity_id"], ENTITY_ID_TAKEN))
    return AggregateChanges(
        project.aggregate(),
        [
            AppAdded(app_id=app_id, name=check_app_name(name)),
            CONFIG_ADDED[kind](app_id=app_id, **config),
        ],
        expected_sequence=project.sequence,
        unique=unique,
    )


def change_app(
    state: AppState, name: str | None, config: dict[str, Any] | None
) -> AggregateChanges | None:
    """The events for a new name and changed settings; None when nothing changes.

    `config` is the app's whole new configuration (checked); only what differs
    from the current one goes into the change event.
    """
    events: list[Event] = []
    unique: list[AddUnique | RemoveUnique] = []
    if name is not None and check_app_name(name) != state.app["name"]:
        events.append(AppChanged(app_id=state.app_id, name=check_app_name(name)))
    if config is not None:
        diff = {k: v for k, v in config.items() if state.app.get(k) != v}
        if "entity_id" in diff:
            old = state.app.get("entity_id")
            if old:
                unique.append(RemoveUnique(UNIQUE_ENTITY_ID, old))
            if diff["entity_id"]:
                unique.append(AddUnique(UNIQUE_ENTITY_ID, diff["entity_id"], ENTITY_ID_TAKEN))
        if diff:
            events.append(CONFIG_CHANGED[state.app_type](app_id=state.app_id, **diff))
    if not events:
        return None
    return AggregateChanges(
        state.aggregate(), events, expected_sequence=state.sequence, unique=unique
    )


def set_app_state(state: AppState, active: bool) -> AggregateChanges:
    event = (AppReactivated if active else AppDeactivated)(app_id=state.app_id)
    return AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence)


def remove_app(state: AppState) -> AggregateChanges:
    """Remove the app, freeing its id, client id and entity id."""
    unique = [
        RemoveUnique(kind, value) for kind, value in state.app_uniques.get(state.app_id, {}).items()
    ]
    return AggregateChanges(
        state.aggregate(),
        [AppRemoved(app_id=state.app_id, name=state.app.get("name", ""))],
        expected_sequence=state.sequence,
        unique=unique,
    )


def new_client_secret(state: AppState) -> tuple[str, AggregateChanges]:
    """A fresh client secret for an OIDC or API app, and the event storing its digest."""
    secret = secrets.new_secret()
    event = SECRET_CHANGED[state.app_type](
        app_id=state.app_id, client_secret_digest=secrets.digest(secret)
    )
    return secret, AggregateChanges(state.aggregate(), [event], expected_sequence=state.sequence)


# -- reads ------------------------------------------------------------------------------

_PROJECT_COLUMNS = [
    projects_table.c.name.label("project_name"),
    projects_table.c.state.label("project_state"),
    projects_table.c.project_role_assertion.label("project_role_assertion"),
    projects_table.c.authorization_required.label("project_authorization_required"),
    projects_table.c.project_access_required.label("project_access_required"),
    projects_table.c.private_labeling_setting.label("project_private_labeling_setting"),
]


def _with_project() -> Any:
    return select(apps_table, *_PROJECT_COLUMNS).join(
        projects_table,
        (projects_table.c.instance_id == apps_table.c.instance_id)
        & (projects_table.c.id == apps_table.c.project_id),
    )


async def app_by_client_id(
    conn: AsyncConnection, instance_id: str, client_id: str
) -> dict[str, Any] | None:
    """The OIDC or API app with this client id, with its project's settings, or None.

    The row has the `apps` columns plus `project_name`, `project_state`,
    `project_role_assertion`, `project_authorization_required`,
    `project_access_required` and `project_private_labeling_setting`. The
    caller decides what an inactive app or project means (login refuses both).
    """
    if not client_id:
        return None
    row = (
        await conn.execute(
            _with_project().where(
                apps_table.c.instance_id == instance_id, apps_table.c.client_id == client_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def app_by_entity_id(
    conn: AsyncConnection, instance_id: str, entity_id: str
) -> dict[str, Any] | None:
    """The SAML app with this entity id, with its project's settings (as `app_by_client_id`)."""
    if not entity_id:
        return None
    row = (
        await conn.execute(
            _with_project().where(
                apps_table.c.instance_id == instance_id, apps_table.c.entity_id == entity_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def get_app(conn: AsyncConnection, instance_id: str, app_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(apps_table).where(
                apps_table.c.instance_id == instance_id, apps_table.c.id == app_id
            )
        )
    ).first()
    return dict(row._mapping) if row else None


def check_client_secret(row: Any, secret: str) -> bool:
    """Whether `secret` is the app's current client secret.

    False when the app has none, or does not authenticate with one (auth
    method `none` or `private_key_jwt`, even if a secret was made before).
    """
    values = row if isinstance(row, dict) else row._mapping
    stored = values["client_secret_digest"]
    if values["auth_method_type"] not in SECRET_METHODS or not stored or not secret:
        return False
    return secrets.matches(secret, stored)
