"""Application configurations: the rules an OIDC, SAML or API app's settings must follow.

An OIDC configuration is a dict with the event payload's names (see
`OIDC_DEFAULTS`). `check_oidc` refuses what no login could use:

- every redirect and post-logout redirect URI is absolute, without fragment;
- web and user-agent apps use `https`; `http` only in development mode;
  custom schemes (`com.example.app:/cb`) only for native apps;
- native apps may use `http` only on a loopback host (`localhost`,
  `127.0.0.1`, `[::1]`) unless in development mode;
- grant type `authorization_code` needs response type `code`, `implicit`
  needs `id_token` or `id_token_token`, and each response type needs its grant
  type (`code` -> `authorization_code`; `id_token*` -> `implicit`);
- auth method `none` (a public client, PKCE) needs the `authorization_code`
  grant, except for user-agent apps using the implicit flow; web apps may be
  public only with PKCE, as ZITADEL's console offers;
- additional origins are bare origins (`scheme://host[:port]`);
- the clock skew is between 0 and 5 seconds.

What is allowed but not recommended is reported as compliance problems
(`compliance_problems`), with ZITADEL's message keys.

SAML service providers are described by their metadata: `entity_id_of`
reads the EntityDescriptor's `entityID` with expat, refusing any DTD or
entity declaration (no entity expansion, no external resources).
"""

from __future__ import annotations

import ipaddress
import re
import xml.parsers.expat
from typing import Any
from urllib.parse import urlsplit

# Enumerations, stored lower-case in events and read models.
OIDC_APP_TYPES = ("web", "user_agent", "native")
OIDC_AUTH_METHODS = ("basic", "post", "none", "private_key_jwt")
API_AUTH_METHODS = ("basic", "private_key_jwt")
RESPONSE_TYPES = ("code", "id_token", "id_token_token")
GRANT_TYPES = ("authorization_code", "implicit", "refresh_token", "device_code", "token_exchange")
ACCESS_TOKEN_TYPES = ("bearer", "jwt")
# Auth methods that authenticate with a client secret.
SECRET_METHODS = ("basic", "post")

MAX_CLOCK_SKEW_MS = 5000
MAX_URIS = 100
MAX_URI = 2048

LOOPBACK_HOSTS = ("localhost",)

OIDC_DEFAULTS: dict[str, Any] = {
    "redirect_uris": [],
    "response_types": ["code"],
    "grant_types": ["authorization_code"],
    "app_type": "web",
    "auth_method_type": "basic",
    "post_logout_redirect_uris": [],
    "oidc_version": "1.0",
    "dev_mode": False,
    "access_token_type": "bearer",
    "access_token_role_assertion": False,
    "id_token_role_assertion": False,
    "id_token_userinfo_assertion": False,
    "clock_skew_ms": 0,
    "additional_origins": [],
    "skip_native_app_success_page": False,
    "back_channel_logout_uri": "",
    # 0: the instance's default login, 1: the login v1, 2: the login v2 (at login_base_uri).
    "login_version": 0,
    "login_base_uri": "",
    # donjon extension (RFC 9126 client metadata `require_pushed_authorization_requests`):
    # this app's authorization requests must be pushed to /oauth/v2/par first.
    "require_pushed_authorization_requests": False,
    # RFC 9449 §5.2: token requests must carry a DPoP proof (sender-constrained tokens).
    "dpop_bound_access_tokens": False,
}
OIDC_FIELDS = tuple(OIDC_DEFAULTS)


class ConfigError(ValueError):
    """A setting that breaks a rule; `field` is its JSON path within the configuration."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def split_uri(field: str, uri: str) -> tuple[str, str]:
    """(scheme, host) of an absolute URI without fragment, or ConfigError."""
    if not uri or uri != uri.strip():
        raise ConfigError(field, "must be an absolute URI without spaces")
    if len(uri) > MAX_URI:
        raise ConfigError(field, f"must be at most {MAX_URI} characters")
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(field, f"{uri!r} is not a valid URI") from None
    if not parts.scheme or not _SCHEME.match(parts.scheme) or any(c.isspace() for c in uri):
        raise ConfigError(field, f"{uri!r} is not an absolute URI")
    if parts.fragment or "#" in uri:
        raise ConfigError(field, "must not contain a fragment (#)")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not host:
        raise ConfigError(field, f"{uri!r} has no host")
    if scheme not in ("http", "https") and not (parts.netloc or parts.path):
        raise ConfigError(field, f"{uri!r} is not an absolute URI")
    return scheme, host


def check_redirect_uri(field: str, uri: str, app_type: str, dev_mode: bool) -> None:
    """A redirect (or post-logout redirect) URI allowed for this kind of app."""
    scheme, host = split_uri(field, uri)
    if scheme == "https":
        return
    if scheme == "http":
        if dev_mode or (app_type == "native" and is_loopback(host)):
            return
        if app_type == "native":
            raise ConfigError(
                field,
                "native apps may use http only on localhost, 127.0.0.1 or [::1]"
                " (or enable developmentMode)",
            )
        raise ConfigError(field, "must use https (http needs developmentMode)")
    if scheme in ("javascript", "data", "vbscript", "file"):
        raise ConfigError(field, f"the {scheme} scheme is not allowed")
    if app_type != "native" and not dev_mode:
        raise ConfigError(field, "custom schemes are allowed only for native apps")


def check_origin(field: str, origin: str) -> str:
    """A bare origin `scheme://host[:port]`, lower-cased."""
    scheme, host = split_uri(field, origin)
    parts = urlsplit(origin)
    if not host or parts.path not in ("", "/") or parts.query or parts.username:
        raise ConfigError(field, f"{origin!r} is not an origin (scheme://host[:port])")
    return f"{scheme}://{parts.netloc.lower()}"


def origin_of(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    return None


def allowed_origins(config: dict[str, Any]) -> list[str]:
    """The origins browsers may call from: the redirect URIs' and the additional ones."""
    origins = [o for o in (origin_of(u) for u in config["redirect_uris"]) if o]
    return list(dict.fromkeys([*origins, *config["additional_origins"]]))


def parse_duration_ms(field: str, value: str) -> int:
    """A protobuf JSON Duration (`"1.5s"`) in milliseconds, 0 to 5 seconds."""
    match = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?s", value.strip())
    if not match:
        raise ConfigError(field, f'expected a duration such as "1s" or "0.5s", got {value!r}')
    ms = int(match.group(1)) * 1000 + int((match.group(2) or "0").ljust(9, "0")[:3])
    if ms > MAX_CLOCK_SKEW_MS:
        raise ConfigError(field, "must be at most 5s")
    return ms


def format_duration(ms: int) -> str:
    seconds, rest = divmod(ms, 1000)
    return f"{seconds}s" if not rest else f"{seconds}.{rest:03d}s"


def _uris(config: dict[str, Any], key: str, field: str) -> None:
    uris = config[key]
    if len(uris) > MAX_URIS:
        raise ConfigError(field, f"at most {MAX_URIS} URIs")
    for i, uri in enumerate(uris):
        check_redirect_uri(f"{field}.{i}", uri, config["app_type"], config["dev_mode"])


def check_login_base_uri(config: dict[str, Any]) -> None:
    """The login v2 base URI of an OIDC or SAML configuration, when set, is http(s)."""
    if config.get("login_base_uri"):
        field = "loginVersion.loginV2.baseUri"
        scheme, _ = split_uri(field, config["login_base_uri"])
        if scheme not in ("http", "https"):
            raise ConfigError(field, "must be an http(s) URI")


def check_oidc(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with duplicates dropped and origins normalised; ConfigError if invalid.

    Field paths in errors are the API's names (`redirectUris.0`, `grantTypes`).
    """
    config = dict(config)
    for key in ("redirect_uris", "post_logout_redirect_uris", "response_types", "grant_types"):
        config[key] = list(dict.fromkeys(config[key]))
    if not config["response_types"]:
        config["response_types"] = ["code"]
    if not config["grant_types"]:
        config["grant_types"] = ["authorization_code"]
    app_type, method = config["app_type"], config["auth_method_type"]
    responses, grants = set(config["response_types"]), set(config["grant_types"])
    _uris(config, "redirect_uris", "redirectUris")
    _uris(config, "post_logout_redirect_uris", "postLogoutRedirectUris")
    if "authorization_code" in grants and "code" not in responses:
        raise ConfigError(
            "grantTypes",
            "OIDC_GRANT_TYPE_AUTHORIZATION_CODE needs response type OIDC_RESPONSE_TYPE_CODE",
        )
    if "implicit" in grants and not responses & {"id_token", "id_token_token"}:
        raise ConfigError(
            "grantTypes",
            "OIDC_GRANT_TYPE_IMPLICIT needs response type OIDC_RESPONSE_TYPE_ID_TOKEN or"
            " OIDC_RESPONSE_TYPE_ID_TOKEN_TOKEN",
        )
    if "code" in responses and "authorization_code" not in grants:
        raise ConfigError(
            "responseTypes",
            "OIDC_RESPONSE_TYPE_CODE needs grant type OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
        )
    if responses & {"id_token", "id_token_token"} and "implicit" not in grants:
        raise ConfigError(
            "responseTypes",
            "OIDC_RESPONSE_TYPE_ID_TOKEN* needs grant type OIDC_GRANT_TYPE_IMPLICIT",
        )
    if (
        method == "none"
        and "authorization_code" not in grants
        and not (app_type == "user_agent" and "implicit" in grants)
    ):
        raise ConfigError(
            "authMethodType",
            "OIDC_AUTH_METHOD_TYPE_NONE (PKCE) needs grant type OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
        )
    if app_type == "user_agent" and method in SECRET_METHODS:
        raise ConfigError(
            "authMethodType", "user-agent apps run in the browser and cannot keep a client secret"
        )
    if (grants & {"authorization_code", "implicit"}) and not config["redirect_uris"]:
        raise ConfigError("redirectUris", "at least one redirect URI is needed for this flow")
    config["additional_origins"] = list(
        dict.fromkeys(
            check_origin(f"additionalOrigins.{i}", o)
            for i, o in enumerate(config["additional_origins"])
        )
    )
    if config["back_channel_logout_uri"]:
        scheme, host = split_uri("backChannelLogoutUri", config["back_channel_logout_uri"])
        if scheme not in ("http", "https") or (
            scheme == "http" and not (config["dev_mode"] or is_loopback(host))
        ):
            raise ConfigError("backChannelLogoutUri", "must be an https URI")
    check_login_base_uri(config)
    if not 0 <= config["clock_skew_ms"] <= MAX_CLOCK_SKEW_MS:
        raise ConfigError("clockSkew", "must be between 0s and 5s")
    return config


def compliance_problems(config: dict[str, Any]) -> list[str]:
    """ZITADEL's message keys for what is allowed but not OIDC compliant or not advisable."""
    problems: list[str] = []
    app_type, method = config["app_type"], config["auth_method_type"]
    grants = set(config["grant_types"])
    if app_type == "native" and method != "none":
        problems.append("Application.OIDC.V1.Native.AuthMethodType.NotNone")
    if app_type == "user_agent" and method != "none":
        problems.append("Application.OIDC.V1.UserAgent.AuthMethodType.NotNone")
    if "refresh_token" in grants and "authorization_code" not in grants:
        problems.append("Application.OIDC.V1.GrantType.Refresh.NoAuthCode")
    return problems


# -- SAML --------------------------------------------------------------------------------

METADATA_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
MAX_METADATA = 512 * 1024


class _Refused(Exception):
    pass


def entity_id_of(field: str, metadata: bytes) -> str:
    """The `entityID` of SAML metadata whose root is an md:EntityDescriptor.

    DTDs, entity declarations and external entities are refused, so no
    expansion (billion laughs) and no fetch (XXE) ever happens.
    """
    if len(metadata) > MAX_METADATA:
        raise ConfigError(field, f"must be at most {MAX_METADATA} bytes")
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    root: list[tuple[str, dict[str, str]]] = []

    def refuse(*_: object) -> None:
        raise _Refused

    def start(name: str, attrs: dict[str, str]) -> None:
        if not root:
            root.append((name, attrs))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    try:
        parser.Parse(metadata, True)
    except _Refused:
        raise ConfigError(field, "DTDs and entity declarations are not allowed") from None
    except xml.parsers.expat.ExpatError as exc:
        raise ConfigError(field, f"is not well-formed XML: {exc}") from None
    if not root:
        raise ConfigError(field, "is empty")
    name, attrs = root[0]
    if name != f"{METADATA_NS} EntityDescriptor":
        raise ConfigError(field, "the root element must be an md:EntityDescriptor")
    entity_id = (attrs.get("entityID") or "").strip()
    if not entity_id:
        raise ConfigError(field, "the EntityDescriptor has no entityID")
    return entity_id
