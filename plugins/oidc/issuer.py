"""The issuer a request addresses and the endpoints under it.

ZITADEL's issuer is the instance's domain as the request names it, with the
scheme and port of the external URL: `{ExternalSecure ? https : http}://
{request host}{:ExternalPort unless 80/443}`. So an instance reached by two
domains has two issuers, each consistent within its own discovery document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from donjon.core.http.edge import request_host
from donjon.core.settings import Settings

# ZITADEL's paths (DESIGN.md "HTTP surface").
DISCOVERY_PATH = "/.well-known/openid-configuration"
AUTHORIZE_PATH = "/oauth/v2/authorize"
TOKEN_PATH = "/oauth/v2/token"
PAR_PATH = "/oauth/v2/par"
DEVICE_AUTHORIZATION_PATH = "/oauth/v2/device_authorization"
INTROSPECT_PATH = "/oauth/v2/introspect"
REVOKE_PATH = "/oauth/v2/revoke"
KEYS_PATH = "/oauth/v2/keys"
USERINFO_PATH = "/oidc/v1/userinfo"
END_SESSION_PATH = "/oidc/v1/end_session"


@dataclass(frozen=True, slots=True)
class Issuer:
    """The OpenID Provider as one request sees it: its instance and issuer URL."""

    instance_id: str
    url: str

    def endpoint(self, path: str) -> str:
        return self.url + path

    @property
    def token_endpoint(self) -> str:
        return self.endpoint(TOKEN_PATH)


def issuer_url(settings: Settings, host: str) -> str:
    """The issuer for requests to `host` (lower-cased, without port)."""
    scheme = "https" if settings.ExternalSecure else "http"
    default_port = 443 if settings.ExternalSecure else 80
    port = "" if settings.ExternalPort == default_port else f":{settings.ExternalPort}"
    return f"{scheme}://{host}{port}"


def issuer_of(request: Request[Any, Any, Any], settings: Settings, instance_id: str) -> Issuer:
    return issuer_for_host(request.headers.get("host", ""), settings, instance_id)


def issuer_for_host(host_header: str, settings: Settings, instance_id: str) -> Issuer:
    """The issuer of a request whose `Host` header is `host_header`."""
    host = request_host(host_header) or settings.ExternalDomain
    return Issuer(instance_id, issuer_url(settings, host))
