"""The HTTP endpoints of the OpenID Provider (Litestar handlers), at ZITADEL's paths."""

from __future__ import annotations

from typing import Any

from donjon.plugins.oidc.endpoints.authorize import authorize
from donjon.plugins.oidc.endpoints.device_authorization import device_authorization
from donjon.plugins.oidc.endpoints.discovery import discovery
from donjon.plugins.oidc.endpoints.end_session import end_session
from donjon.plugins.oidc.endpoints.introspection import introspect
from donjon.plugins.oidc.endpoints.jwks import jwks
from donjon.plugins.oidc.endpoints.par import par
from donjon.plugins.oidc.endpoints.revocation import revoke
from donjon.plugins.oidc.endpoints.token import token
from donjon.plugins.oidc.endpoints.userinfo import userinfo

ROUTES: list[Any] = [
    authorize,
    device_authorization,
    discovery,
    end_session,
    jwks,
    par,
    token,
    introspect,
    revoke,
    userinfo,
]
