"""OpenID Connect Discovery 1.0: `GET /.well-known/openid-configuration`, per instance.

Only what works is advertised: the grants of the registry, the client
authentication methods, the algorithms keys and assertions may use. The
authorization endpoint is listed because discovery requires it; it comes
with the hosted login (see docs/oidc.md).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.assertion import ASSERTION_ALGS
from donjon.plugins.oidc.client_auth import ALL_METHODS
from donjon.plugins.oidc.dpop.proof import ALGORITHMS as DPOP_ALGORITHMS
from donjon.plugins.oidc.grants import GRANTS
from donjon.plugins.oidc.issuer import (
    AUTHORIZE_PATH,
    DEVICE_AUTHORIZATION_PATH,
    DISCOVERY_PATH,
    END_SESSION_PATH,
    INTROSPECT_PATH,
    KEYS_PATH,
    PAR_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
    Issuer,
    issuer_of,
)
from donjon.plugins.oidc.keys.generate import ALGORITHMS
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.scopes import SUPPORTED as SCOPES

AUTHENTICATED_METHODS = [m for m in ALL_METHODS if m != "none"]
CLAIMS = (
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "iss",
    "jti",
    "auth_time",
    "nonce",
    "amr",
    "acr",
    "at_hash",
    "sid",
    "azp",
    "client_id",
    "scope",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "gender",
    "locale",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "urn:zitadel:iam:org:project:roles",
    "urn:zitadel:iam:user:resourceowner:id",
    "urn:zitadel:iam:user:resourceowner:name",
    "urn:zitadel:iam:user:resourceowner:primary_domain",
)


def configuration(issuer: Issuer, *, require_par: bool = False) -> dict[str, Any]:
    """The discovery document of `issuer`."""
    return {
        "issuer": issuer.url,
        "authorization_endpoint": issuer.endpoint(AUTHORIZE_PATH),
        "token_endpoint": issuer.endpoint(TOKEN_PATH),
        "introspection_endpoint": issuer.endpoint(INTROSPECT_PATH),
        "userinfo_endpoint": issuer.endpoint(USERINFO_PATH),
        "revocation_endpoint": issuer.endpoint(REVOKE_PATH),
        "jwks_uri": issuer.endpoint(KEYS_PATH),
        "end_session_endpoint": issuer.endpoint(END_SESSION_PATH),
        "pushed_authorization_request_endpoint": issuer.endpoint(PAR_PATH),
        "device_authorization_endpoint": issuer.endpoint(DEVICE_AUTHORIZATION_PATH),
        "require_pushed_authorization_requests": require_par,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code", "id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": [*GRANTS, "implicit"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "token_endpoint_auth_methods_supported": list(ALL_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": list(ALL_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "claims_supported": list(CLAIMS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        # RFC 9207: authorization responses carry iss.
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "ui_locales_supported": ["en"],
    }


@get(DISCOVERY_PATH, sync_to_thread=False)
def discovery(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    instance_id: NamedDependency[str],
) -> Response[dict[str, Any]]:
    issuer = issuer_of(request, runtime.settings, instance_id)
    require_par = provider_of(runtime).settings.RequirePushedAuthorizationRequests
    return Response(configuration(issuer, require_par=require_par))
