"""zitadel.application.v2.ApplicationService: the OIDC, SAML and API apps of projects.

Enum names are ZITADEL's (`OIDC_APP_TYPE_WEB`, `OIDC_AUTH_METHOD_TYPE_NONE`,
...); they are stored lower-case (`web`, `none`). The rules an OIDC
configuration must follow are in `donjon.core.identity.app_config`; errors name
the field under its configuration (`oidcConfiguration.redirectUris.0: ...`).
The request and response messages, and turning a request's configuration into
the events' settings, are in `application_config`; here the methods.
Client secrets are returned once, by CreateApplication and
GenerateClientSecret. Application keys (private_key_jwt) are in
`application_keys`.
"""

from __future__ import annotations

from typing import Any

from donjon.core import ids
from donjon.core.api.application_config import (
    API_AUTH_METHODS,
    KINDS,
    STATES,
    ApplicationRequest,
    ApplicationSearchFilter,
    CreateApplicationRequest,
    GetApplicationRequest,
    ListApplicationsRequest,
    UpdateApplicationRequest,
    application,
    check_login_base,
    checked_oidc,
    compliance,
    enum_value,
    login_settings,
    oidc_settings,
    one_config,
    reverse,
    saml_metadata,
)
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Service,
    invalid,
    not_found,
    timestamp,
)
from donjon.core.api.project_service import filter_text, project_state, readable
from donjon.core.api.queries import (
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
)
from donjon.core.identity import app_config, apps, secrets

service = Service("zitadel.application.v2.ApplicationService")

MAX_ID = 200


# -- helpers ----------------------------------------------------------------------------


async def app_state(
    call: Call, application_id: str, project_id: str, *, permission: str = ""
) -> apps.AppState:
    """The app's write model (with its project); the project is found when not given.

    Then permission_denied unless the caller holds `permission` (when given) on the project.
    """
    if not application_id:
        raise invalid("applicationId", "is required")
    if not project_id:
        async with call.runtime.db.read() as conn:
            row = await apps.get_app(conn, call.instance_id, application_id)
        if row is None:
            raise not_found("application")
        project_id = row["project_id"]
    state = await apps.AppState.load_app(
        call.runtime.store, call.instance_id, project_id, application_id
    )
    if not state.app_exists:
        raise not_found("application")
    if permission:
        await call.require(permission, org_id=state.owner, project_id=state.id)
    return state


def _app_name(name: str) -> str:
    try:
        return apps.check_app_name(name)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None


def _new_secret_for(method: str) -> tuple[str, str]:
    """(secret, digest) when `method` authenticates with a client secret, else ("", "")."""
    if method not in app_config.SECRET_METHODS:
        return "", ""
    secret = secrets.new_secret()
    return secret, secrets.digest(secret)


# -- methods ----------------------------------------------------------------------------


@service.rpc("CreateApplication", request=CreateApplicationRequest)
async def create_application(call: Call, req: CreateApplicationRequest) -> dict[str, Any]:
    """Create an OIDC, SAML or API application in a project.

    OIDC apps authenticating with BASIC or POST, and API apps with BASIC, get
    a client secret, returned here once.
    """
    project = await project_state(call, req.project_id, permission="project.app.write")
    name = _app_name(req.name)
    app_id = req.application_id.strip()
    if len(app_id) > MAX_ID or any(c.isspace() for c in app_id):
        raise invalid("applicationId", f"must be at most {MAX_ID} characters, without spaces")
    kind = one_config(req)
    response: dict[str, Any] = {}
    if kind is None:
        raise invalid(
            "oidcConfiguration", "set one of apiConfiguration, oidcConfiguration, samlConfiguration"
        )
    if kind == apps.OIDC:
        assert req.oidc_configuration is not None
        where = "oidcConfiguration"
        config = checked_oidc(
            {**app_config.OIDC_DEFAULTS, **oidc_settings(req.oidc_configuration, where)}, where
        )
        client_id = ids.new_id()
        secret, digest = _new_secret_for(config["auth_method_type"])
        config.update(client_id=client_id, client_secret_digest=digest)
        response["oidcConfiguration"] = {
            "clientId": client_id,
            **({"clientSecret": secret} if secret else {}),
            **compliance(config),
        }
    elif kind == apps.SAML:
        assert req.saml_configuration is not None
        where = "samlConfiguration"
        metadata = saml_metadata(req.saml_configuration, where)
        if metadata is None:
            raise invalid(f"{where}.metadataXml", "set metadataXml or metadataUrl")
        config = {**metadata, **login_settings(req.saml_configuration.login_version)}
        check_login_base(config, where)
        response["samlConfiguration"] = {}
    else:
        assert req.api_configuration is not None
        method = enum_value(
            API_AUTH_METHODS,
            req.api_configuration.auth_method_type or "API_AUTH_METHOD_TYPE_BASIC",
            "apiConfiguration.authMethodType",
        )
        client_id = ids.new_id()
        secret, digest = _new_secret_for(method)
        config = {
            "client_id": client_id,
            "client_secret_digest": digest,
            "auth_method_type": method,
        }
        response["apiConfiguration"] = {
            "clientId": client_id,
            **({"clientSecret": secret} if secret else {}),
        }
    if app_id:
        existing = await apps.AppState.load_app(
            call.runtime.store, call.instance_id, project.id, app_id
        )
        if existing.app:
            raise ConnectError(
                "already_exists", "applicationId: an application with this id exists"
            )
    else:
        app_id = ids.new_id()
    stored = await call.runtime.store.push(
        apps.add_app(project, app_id, name, kind, config), creator=call.user_id
    )
    return {"applicationId": app_id, "creationDate": timestamp(stored[0].created_at), **response}


@service.rpc("GetApplication", request=GetApplicationRequest)
async def get_application(call: Call, req: GetApplicationRequest) -> dict[str, Any]:
    """An application by its id."""
    if not req.application_id:
        raise invalid("applicationId", "is required")
    async with call.runtime.db.read() as conn:
        row = await apps.get_app(conn, call.instance_id, req.application_id)
    if row is None:
        raise not_found("application")
    await call.require(
        "project.app.read", org_id=row["resource_owner"], project_id=row["project_id"]
    )
    return {"application": application(row)}


def _app_filter(f: ApplicationSearchFilter, i: int) -> Any:
    t = apps.apps_table
    where = f"filters.{i}"
    if f.client_id_filter is not None:
        return t.c.client_id == f.client_id_filter.client_id
    if f.entity_id_filter is not None:
        return t.c.entity_id == f.entity_id_filter.entity_id
    if f.name_filter is not None:
        return filter_text(
            t.c.name, f.name_filter.name, f.name_filter.method, f"{where}.nameFilter"
        )
    if f.project_id_filter is not None:
        return t.c.project_id == f.project_id_filter.project_id
    if f.state_filter is not None:
        state = reverse(STATES).get(f.state_filter)
        if state is None:
            raise invalid(f"{where}.stateFilter", f"unknown state {f.state_filter!r}")
        return t.c.state == state
    if f.type_filter is not None:
        kind = reverse(KINDS).get(f.type_filter)
        if kind is None:
            raise invalid(f"{where}.typeFilter", f"unknown type {f.type_filter!r}")
        return t.c.type == kind
    raise invalid(
        where,
        "set one of clientIdFilter, entityIdFilter, nameFilter, projectIdFilter, stateFilter,"
        " typeFilter",
    )


@service.rpc("ListApplications", request=ListApplicationsRequest)
async def list_applications(call: Call, req: ListApplicationsRequest) -> dict[str, Any]:
    """Search the applications the caller may read."""
    offset, limit, asc = paging(req.pagination, "pagination")
    t = apps.apps_table
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    conditions += [_app_filter(f, i) for i, f in enumerate(req.filters)]
    sorts = {
        None: t.c.created_at,
        "APPLICATION_SORT_BY_ID": t.c.id,
        "APPLICATION_SORT_BY_NAME": t.c.name,
        "APPLICATION_SORT_BY_STATE": t.c.state,
        "APPLICATION_SORT_BY_CREATION_DATE": t.c.created_at,
        "APPLICATION_SORT_BY_CHANGE_DATE": t.c.changed_at,
    }
    sort = sort_column(sorts, req.sorting_column)
    visible = await readable(call, "project.app.read", t.c.resource_owner, t.c.project_id)
    if visible is not None:
        conditions.append(visible)
    order = ordering(asc, sort, t.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {
        "applications": [application(r) for r in rows],
        "pagination": pagination(total, limit),
    }


@service.rpc("UpdateApplication", request=UpdateApplicationRequest)
async def update_application(call: Call, req: UpdateApplicationRequest) -> dict[str, Any]:
    """Rename an application or change its settings; omitted fields stay as they are."""
    state = await app_state(
        call, req.application_id, req.project_id, permission="project.app.write"
    )
    name = _app_name(req.name) if req.name is not None else None
    kind = one_config(req)
    if kind is not None and kind != state.app_type:
        raise invalid(
            f"{kind}Configuration",
            f"the application is an {state.app_type.upper()} application; send"
            f" {state.app_type}Configuration",
        )
    config: dict[str, Any] | None = None
    if kind == apps.OIDC:
        assert req.oidc_configuration is not None
        where = "oidcConfiguration"
        current = {k: state.app.get(k, v) for k, v in app_config.OIDC_DEFAULTS.items()}
        config = checked_oidc({**current, **oidc_settings(req.oidc_configuration, where)}, where)
    elif kind == apps.SAML:
        assert req.saml_configuration is not None
        where = "samlConfiguration"
        config = {
            **(saml_metadata(req.saml_configuration, where) or {}),
            **login_settings(req.saml_configuration.login_version),
        }
        check_login_base(config, where)
    elif kind == apps.API:
        assert req.api_configuration is not None
        if req.api_configuration.auth_method_type is not None:
            config = {
                "auth_method_type": enum_value(
                    API_AUTH_METHODS,
                    req.api_configuration.auth_method_type,
                    "apiConfiguration.authMethodType",
                )
            }
    changes = apps.change_app(state, name, config)
    if changes is None:
        return {"changeDate": timestamp(state.changed_at)}
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


async def _set_state(call: Call, req: ApplicationRequest, active: bool) -> Any:
    state = await app_state(
        call, req.application_id, req.project_id, permission="project.app.write"
    )
    if (state.app["state"] == apps.ACTIVE) == active:
        word = "active" if active else "inactive"
        raise ConnectError("failed_precondition", f"the application is already {word}")
    stored = await call.runtime.store.push(apps.set_app_state(state, active), creator=call.user_id)
    return stored[-1].created_at


@service.rpc("DeactivateApplication", request=ApplicationRequest)
async def deactivate_application(call: Call, req: ApplicationRequest) -> dict[str, Any]:
    """Deactivate an application: no one can log in through it until it is reactivated."""
    return {"deactivationDate": timestamp(await _set_state(call, req, False))}


@service.rpc("ReactivateApplication", request=ApplicationRequest)
async def reactivate_application(call: Call, req: ApplicationRequest) -> dict[str, Any]:
    """Reactivate a deactivated application."""
    return {"reactivationDate": timestamp(await _set_state(call, req, True))}


@service.rpc("DeleteApplication", request=ApplicationRequest)
async def delete_application(call: Call, req: ApplicationRequest) -> dict[str, Any]:
    """Remove an application; its client id is free again."""
    state = await app_state(
        call, req.application_id, req.project_id, permission="project.app.delete"
    )
    stored = await call.runtime.store.push(apps.remove_app(state), creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at)}


@service.rpc("GenerateClientSecret", request=ApplicationRequest)
async def generate_client_secret(call: Call, req: ApplicationRequest) -> dict[str, Any]:
    """Replace the client secret of an OIDC or API app; the new one is returned once."""
    state = await app_state(
        call, req.application_id, req.project_id, permission="project.app.write"
    )
    if state.app_type not in (apps.OIDC, apps.API):
        raise ConnectError("failed_precondition", "only OIDC and API applications have secrets")
    if state.app.get("auth_method_type") not in app_config.SECRET_METHODS:
        raise ConnectError(
            "failed_precondition",
            "the application does not authenticate with a client secret (auth method"
            f" {state.app.get('auth_method_type')})",
        )
    secret, changes = apps.new_client_secret(state)
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"clientSecret": secret, "creationDate": timestamp(stored[-1].created_at)}
