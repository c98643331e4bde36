"""The configurations of ApplicationService's OIDC, SAML and API apps: messages and checks.

Requests to the configuration an app's events carry (`oidc_settings`,
`checked_oidc`, `saml_metadata`, ...), and an app's read-model row to the
`Application` message (`application`). Enum names are ZITADEL's; the methods
that use these are in `application_service`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from donjon.core.api.connect import Message, invalid, timestamp
from donjon.core.api.queries import PaginationRequest
from donjon.core.identity import app_config, apps
from donjon.core.identity.app_config import ConfigError

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


def reverse(mapping: dict[str, str]) -> dict[str, str]:
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


def enum_value(mapping: dict[str, str], value: str, field_name: str) -> str:
    if value not in mapping:
        known = ", ".join(k for k in mapping if not k.endswith("_UNSPECIFIED"))
        raise invalid(field_name, f"unknown value {value!r} (one of {known})")
    return mapping[value]


def login_settings(version: LoginVersion | None) -> dict[str, Any]:
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
            enum_value(RESPONSE_TYPES, v, f"{where}.responseTypes.{i}")
            for i, v in enumerate(req.response_types)
        ]
    if req.grant_types is not None:
        out["grant_types"] = [
            enum_value(GRANT_TYPES, v, f"{where}.grantTypes.{i}")
            for i, v in enumerate(req.grant_types)
        ]
    if req.application_type is not None:
        out["app_type"] = enum_value(APP_TYPES, req.application_type, f"{where}.applicationType")
    if req.auth_method_type is not None:
        out["auth_method_type"] = enum_value(
            OIDC_AUTH_METHODS, req.auth_method_type, f"{where}.authMethodType"
        )
    if req.version is not None:
        out["oidc_version"] = enum_value(VERSIONS, req.version, f"{where}.version")
    if req.access_token_type is not None:
        out["access_token_type"] = enum_value(
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
    out.update(login_settings(req.login_version))
    return out


def checked_oidc(config: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return app_config.check_oidc(config)
    except ConfigError as exc:
        raise invalid(f"{where}.{exc.field}", exc.problem) from None


def saml_metadata(req: SAMLConfigRequest, where: str) -> dict[str, Any] | None:
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


def check_login_base(config: dict[str, Any], where: str) -> None:
    try:
        app_config.check_login_base_uri(config)
    except ConfigError as exc:
        raise invalid(f"{where}.{exc.field}", exc.problem) from None


def one_config(req: CreateApplicationRequest | UpdateApplicationRequest) -> str | None:
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
        "responseTypes": [reverse(RESPONSE_TYPES)[v] for v in row["response_types"]],
        "grantTypes": [reverse(GRANT_TYPES)[v] for v in row["grant_types"]],
        "applicationType": reverse(APP_TYPES).get(row["app_type"], "OIDC_APP_TYPE_WEB"),
        "clientId": row["client_id"],
        "authMethodType": reverse(OIDC_AUTH_METHODS).get(
            row["auth_method_type"], "OIDC_AUTH_METHOD_TYPE_BASIC"
        ),
        "postLogoutRedirectUris": list(row["post_logout_redirect_uris"]),
        "version": "OIDC_VERSION_1_0",
        **compliance(config),
        "developmentMode": row["dev_mode"],
        "accessTokenType": reverse(TOKEN_TYPES).get(
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
            "authMethodType": reverse(API_AUTH_METHODS).get(
                row["auth_method_type"], "API_AUTH_METHOD_TYPE_BASIC"
            ),
        }
    return out
