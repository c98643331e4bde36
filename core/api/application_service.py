"""zitadel.application.v2.ApplicationService: the OIDC, SAML and API apps of projects.

Enum names are ZITADEL's (`OIDC_APP_TYPE_WEB`, `OIDC_AUTH_METHOD_TYPE_NONE`,
...); they are stored lower-case (`web`, `none`). The rules an OIDC
configuration must follow are in `donjon.core.identity.app_config`; errors name
the field under its configuration (`oidcConfiguration.redirectUris.0: ...`).
Client secrets are returned once, by CreateApplication and
GenerateClientSecret. Application keys (private_key_jwt) are in
`application_keys`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from donjon.core import ids
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
    not_found,
    timestamp,
)
from donjon.core.api.project_service import filter_text, project_state, readable
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
)
from donjon.core.identity import app_config, apps, secrets
from donjon.core.identity.app_config import ConfigError

service = Service("zitadel.application.v2.ApplicationService")

APP_TYPES = {
    "OIDC_APP_TYPE_WEB": "web",
    "OIDC_APP_TYPE_USER_AGENT": "user_agent",
    "OIDC_APP_TYPE_NATIVE": "native",
}
OIDC_AUTH_METHODS = {
    "OIDC_AUTH_METHOD_TYPE_BASIC": "basic",
    "OIDC_AUTH_METHOD_TYPE_POST": "post",
    "OIDC_AUTH_METHOD_TYPE_NONE": "none",
    "OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT": "private_key_jwt",
}
API_AUTH_METHODS = {
    "API_AUTH_METHOD_TYPE_BASIC": "basic",
    "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT": "private_key_jwt",
}
RESPONSE_TYPES = {
    "OIDC_RESPONSE_TYPE_CODE": "code",
    "OIDC_RESPONSE_TYPE_ID_TOKEN": "id_token",
    "OIDC_RESPONSE_TYPE_ID_TOKEN_TOKEN": "id_token_token",
    "OIDC_RESPONSE_TYPE_UNSPECIFIED": "code",  # as ZITADEL: unspecified means code
}
GRANT_TYPES = {
    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE": "authorization_code",
    "OIDC_GRANT_TYPE_IMPLICIT": "implicit",
    "OIDC_GRANT_TYPE_REFRESH_TOKEN": "refresh_token",
    "OIDC_GRANT_TYPE_DEVICE_CODE": "device_code",
    "OIDC_GRANT_TYPE_TOKEN_EXCHANGE": "token_exchange",
}
TOKEN_TYPES = {"OIDC_TOKEN_TYPE_BEARER": "bearer", "OIDC_TOKEN_TYPE_JWT": "jwt"}
VERSIONS = {"OIDC_VERSION_1_0": "1.0"}
STATES = {apps.ACTIVE: "APPLICATION_STATE_ACTIVE", apps.INACTIVE: "APPLICATION_STATE_INACTIVE"}
KINDS = {
    apps.OIDC: "APPLICATION_TYPE_OIDC",
    apps.SAML: "APPLICATION_TYPE_SAML",
    apps.API: "APPLICATION_TYPE_API",
}
COMPLIANCE_MESSAGES = {
    "Application.OIDC.V1.Native.AuthMethodType.NotNone": (
        "Native apps should be public clients (auth method NONE, with PKCE)."
    ),
    "Application.OIDC.V1.UserAgent.AuthMethodType.NotNone": (
        "User-agent apps should be public clients (auth method NONE, with PKCE)."
    ),
    "Application.OIDC.V1.GrantType.Refresh.NoAuthCode": (
        "Refresh tokens are issued only with the authorization code grant."
    ),
}
MAX_ID = 200


def _reverse(mapping: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in mapping.items():
        out.setdefault(value, name)
    return out


# -- messages ---------------------------------------------------------------------------


class LoginV2(Message):
    base_uri: str | None = None


class LoginVersion(Message):
    login_v1: dict[str, Any] | None = None
    login_v2: LoginV2 | None = None


class OIDCConfigRequest(Message):
    """The OIDC settings of CreateApplication and UpdateApplication (None: default / unchanged)."""

    redirect_uris: list[str] | None = None
    response_types: list[str] | None = None
    grant_types: list[str] | None = None
    application_type: str | None = None
    auth_method_type: str | None = None
    post_logout_redirect_uris: list[str] | None = None
    version: str | None = None
    development_mode: bool | None = None
    access_token_type: str | None = None
    access_token_role_assertion: bool | None = None
    id_token_role_assertion: bool | None = None
    id_token_userinfo_assertion: bool | None = None
    clock_skew: str | None = None
    additional_origins: list[str] | None = None
    skip_native_app_success_page: bool | None = None
    back_channel_logout_uri: str | None = None
    login_version: LoginVersion | None = None
    #: donjon extension (RFC 9126 `require_pushed_authorization_requests`).
    require_pushed_authorization_requests: bool | None = None
    #: donjon's, RFC 9449 §5.2 `dpop_bound_access_tokens`: refuse token requests without DPoP.
    dpop_bound_access_tokens: bool | None = None


class SAMLConfigRequest(Message):
    metadata_xml: str | None = None
    metadata_url: str | None = None
    login_version: LoginVersion | None = None


class APIConfigRequest(Message):
    auth_method_type: str | None = None


class CreateApplicationRequest(Message):
    project_id: str = ""
    application_id: str = ""
    name: str = ""
    api_configuration: APIConfigRequest | None = None
    oidc_configuration: OIDCConfigRequest | None = None
    saml_configuration: SAMLConfigRequest | None = None


class UpdateApplicationRequest(Message):
    application_id: str = ""
    project_id: str = ""
    name: str | None = None
    api_configuration: APIConfigRequest | None = None
    oidc_configuration: OIDCConfigRequest | None = None
    saml_configuration: SAMLConfigRequest | None = None


class GetApplicationRequest(Message):
    application_id: str = ""


class ApplicationRequest(Message):
    application_id: str = ""
    project_id: str = ""


class ClientIDFilter(Message):
    client_id: str = ""


class EntityIDFilter(Message):
    entity_id: str = ""


class NameFilter(Message):
    name: str = ""
    method: str | None = None


class ProjectIDFilter(Message):
    project_id: str = ""


class ApplicationSearchFilter(Message):
    client_id_filter: ClientIDFilter | None = None
    entity_id_filter: EntityIDFilter | None = None
    name_filter: NameFilter | None = None
    project_id_filter: ProjectIDFilter | None = None
    state_filter: str | None = None
    type_filter: str | None = None


class ListApplicationsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[ApplicationSearchFilter] = []


# -- request -> configuration ---------------------------------------------------------


def _enum(mapping: dict[str, str], value: str, field_name: str) -> str:
    if value not in mapping:
        known = ", ".join(k for k in mapping if not k.endswith("_UNSPECIFIED"))
        raise invalid(field_name, f"unknown value {value!r} (one of {known})")
    return mapping[value]


def _login(version: LoginVersion | None) -> dict[str, Any]:
    if version is None:
        return {}
    if version.login_v2 is not None:
        return {"login_version": 2, "login_base_uri": version.login_v2.base_uri or ""}
    if version.login_v1 is not None:
        return {"login_version": 1, "login_base_uri": ""}
    return {"login_version": 0, "login_base_uri": ""}


def oidc_settings(req: OIDCConfigRequest, where: str) -> dict[str, Any]:
    """The settings a request sets, under the event's names (absent ones left out)."""
    out: dict[str, Any] = {}
    if req.redirect_uris is not None:
        out["redirect_uris"] = req.redirect_uris
    if req.post_logout_redirect_uris is not None:
        out["post_logout_redirect_uris"] = req.post_logout_redirect_uris
    if req.additional_origins is not None:
        out["additional_origins"] = req.additional_origins
    if req.response_types is not None:
        out["response_types"] = [
            _enum(RESPONSE_TYPES, v, f"{where}.responseTypes.{i}")
            for i, v in enumerate(req.response_types)
        ]
    if req.grant_types is not None:
        out["grant_types"] = [
            _enum(GRANT_TYPES, v, f"{where}.grantTypes.{i}") for i, v in enumerate(req.grant_types)
        ]
    if req.application_type is not None:
        out["app_type"] = _enum(APP_TYPES, req.application_type, f"{where}.applicationType")
    if req.auth_method_type is not None:
        out["auth_method_type"] = _enum(
            OIDC_AUTH_METHODS, req.auth_method_type, f"{where}.authMethodType"
        )
    if req.version is not None:
        out["oidc_version"] = _enum(VERSIONS, req.version, f"{where}.version")
    if req.access_token_type is not None:
        out["access_token_type"] = _enum(
            TOKEN_TYPES, req.access_token_type, f"{where}.accessTokenType"
        )
    for name, key in (
        ("development_mode", "dev_mode"),
        ("access_token_role_assertion", "access_token_role_assertion"),
        ("id_token_role_assertion", "id_token_role_assertion"),
        ("id_token_userinfo_assertion", "id_token_userinfo_assertion"),
        ("skip_native_app_success_page", "skip_native_app_success_page"),
        ("back_channel_logout_uri", "back_channel_logout_uri"),
        ("require_pushed_authorization_requests", "require_pushed_authorization_requests"),
        ("dpop_bound_access_tokens", "dpop_bound_access_tokens"),
    ):
        if getattr(req, name) is not None:
            out[key] = getattr(req, name)
    if req.clock_skew is not None:
        try:
            out["clock_skew_ms"] = app_config.parse_duration_ms(
                f"{where}.clockSkew", req.clock_skew
            )
        except ConfigError as exc:
            raise invalid(exc.field, exc.problem) from None
    out.update(_login(req.login_version))
    return out


def checked_oidc(config: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return app_config.check_oidc(config)
    except ConfigError as exc:
        raise invalid(f"{where}.{exc.field}", exc.problem) from None


def _metadata(req: SAMLConfigRequest, where: str) -> dict[str, Any] | None:
    """The SAML metadata settings of a request: entity id and XML, or the URL (not fetched)."""
    if req.metadata_xml and req.metadata_url:
        raise invalid(f"{where}.metadataXml", "set either metadataXml or metadataUrl, not both")
    if req.metadata_xml:
        raw = req.metadata_xml.strip()
        if raw.startswith("<"):
            xml = raw.encode()
        else:
            try:
                xml = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise invalid(
                    f"{where}.metadataXml", "expected the metadata XML, base64-encoded"
                ) from None
        try:
            entity_id = app_config.entity_id_of(f"{where}.metadataXml", xml)
            text = xml.decode("utf-8")
        except ConfigError as exc:
            raise invalid(exc.field, exc.problem) from None
        except UnicodeDecodeError:
            raise invalid(f"{where}.metadataXml", "must be UTF-8") from None
        return {"entity_id": entity_id, "metadata": text, "metadata_url": ""}
    if req.metadata_url:
        try:
            scheme, _ = app_config.split_uri(f"{where}.metadataUrl", req.metadata_url)
        except ConfigError as exc:
            raise invalid(exc.field, exc.problem) from None
        if scheme not in ("http", "https"):
            raise invalid(f"{where}.metadataUrl", "must be an http(s) URL")
        return {"entity_id": "", "metadata": "", "metadata_url": req.metadata_url}
    return None


def _check_login_base(config: dict[str, Any], where: str) -> None:
    try:
        app_config.check_login_base_uri(config)
    except ConfigError as exc:
        raise invalid(f"{where}.{exc.field}", exc.problem) from None


def _one_config(req: CreateApplicationRequest | UpdateApplicationRequest) -> str | None:
    given = [
        kind
        for kind, value in (
            (apps.OIDC, req.oidc_configuration),
            (apps.SAML, req.saml_configuration),
            (apps.API, req.api_configuration),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise invalid(
            f"{given[1]}Configuration",
            "set only one of apiConfiguration, oidcConfiguration, samlConfiguration",
        )
    return given[0] if given else None


# -- responses --------------------------------------------------------------------------


def _login_out(version: int, base_uri: str) -> dict[str, Any] | None:
    if version == 1:
        return {"loginV1": {}}
    if version == 2:
        return {"loginV2": {"baseUri": base_uri} if base_uri else {}}
    return None


def compliance(config: dict[str, Any]) -> dict[str, Any]:
    problems = app_config.compliance_problems(config)
    return {
        "nonCompliant": bool(problems),
        "complianceProblems": [
            {"key": p, "localizedMessage": COMPLIANCE_MESSAGES.get(p, p)} for p in problems
        ],
    }


def oidc_configuration(row: Any) -> dict[str, Any]:
    config = {k: row[k] for k in app_config.OIDC_FIELDS}
    out: dict[str, Any] = {
        "redirectUris": list(row["redirect_uris"]),
        "responseTypes": [_reverse(RESPONSE_TYPES)[v] for v in row["response_types"]],
        "grantTypes": [_reverse(GRANT_TYPES)[v] for v in row["grant_types"]],
        "applicationType": _reverse(APP_TYPES).get(row["app_type"], "OIDC_APP_TYPE_WEB"),
        "clientId": row["client_id"],
        "authMethodType": _reverse(OIDC_AUTH_METHODS).get(
            row["auth_method_type"], "OIDC_AUTH_METHOD_TYPE_BASIC"
        ),
        "postLogoutRedirectUris": list(row["post_logout_redirect_uris"]),
        "version": "OIDC_VERSION_1_0",
        **compliance(config),
        "developmentMode": row["dev_mode"],
        "accessTokenType": _reverse(TOKEN_TYPES).get(
            row["access_token_type"], "OIDC_TOKEN_TYPE_BEARER"
        ),
        "accessTokenRoleAssertion": row["access_token_role_assertion"],
        "idTokenRoleAssertion": row["id_token_role_assertion"],
        "idTokenUserinfoAssertion": row["id_token_userinfo_assertion"],
        "clockSkew": app_config.format_duration(row["clock_skew_ms"]),
        "additionalOrigins": list(row["additional_origins"]),
        "allowedOrigins": app_config.allowed_origins(config),
        "skipNativeAppSuccessPage": row["skip_native_app_success_page"],
        "backChannelLogoutUri": row["back_channel_logout_uri"],
        "requirePushedAuthorizationRequests": row["require_pushed_authorization_requests"],
        "dpopBoundAccessTokens": row["dpop_bound_access_tokens"],
    }
    login = _login_out(row["login_version"], row["login_base_uri"])
    if login is not None:
        out["loginVersion"] = login
    return out


def saml_configuration(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metadataXml": base64.b64encode(row["metadata"].encode()).decode(),
        "metadataUrl": row["metadata_url"],
    }
    login = _login_out(row["login_version"], row["login_base_uri"])
    if login is not None:
        out["loginVersion"] = login
    return out


def application(row: Any) -> dict[str, Any]:
    row = dict(row._mapping) if hasattr(row, "_mapping") else row
    out: dict[str, Any] = {
        "applicationId": row["id"],
        "creationDate": timestamp(row["created_at"]),
        "changeDate": timestamp(row["changed_at"]),
        "state": STATES.get(row["state"], "APPLICATION_STATE_UNSPECIFIED"),
        "name": row["name"],
        "projectId": row["project_id"],
    }
    if row["type"] == apps.OIDC:
        out["oidcConfiguration"] = oidc_configuration(row)
    elif row["type"] == apps.SAML:
        out["samlConfiguration"] = saml_configuration(row)
    elif row["type"] == apps.API:
        out["apiConfiguration"] = {
            "clientId": row["client_id"],
            "authMethodType": _reverse(API_AUTH_METHODS).get(
                row["auth_method_type"], "API_AUTH_METHOD_TYPE_BASIC"
            ),
        }
    return out


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
    kind = _one_config(req)
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
        metadata = _metadata(req.saml_configuration, where)
        if metadata is None:
            raise invalid(f"{where}.metadataXml", "set metadataXml or metadataUrl")
        config = {**metadata, **_login(req.saml_configuration.login_version)}
        _check_login_base(config, where)
        response["samlConfiguration"] = {}
    else:
        assert req.api_configuration is not None
        method = _enum(
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
        state = _reverse(STATES).get(f.state_filter)
        if state is None:
            raise invalid(f"{where}.stateFilter", f"unknown state {f.state_filter!r}")
        return t.c.state == state
    if f.type_filter is not None:
        kind = _reverse(KINDS).get(f.type_filter)
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
    kind = _one_config(req)
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
            **(_metadata(req.saml_configuration, where) or {}),
            **_login(req.saml_configuration.login_version),
        }
        _check_login_base(config, where)
    elif kind == apps.API:
        assert req.api_configuration is not None
        if req.api_configuration.auth_method_type is not None:
            config = {
                "auth_method_type": _enum(
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
