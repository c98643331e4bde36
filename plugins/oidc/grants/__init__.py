"""The grants the token endpoint serves, by `grant_type`."""

from __future__ import annotations

from donjon.plugins.oidc.grants.authorization_code import AuthorizationCodeGrant
from donjon.plugins.oidc.grants.base import Grant
from donjon.plugins.oidc.grants.client_credentials import ClientCredentialsGrant
from donjon.plugins.oidc.grants.device_code import DeviceCodeGrant
from donjon.plugins.oidc.grants.jwt_bearer import JWTBearerGrant
from donjon.plugins.oidc.grants.refresh_token import RefreshTokenGrant
from donjon.plugins.oidc.grants.token_exchange import TokenExchangeGrant

GRANTS: dict[str, type[Grant]] = {
    grant.GRANT_TYPE: grant
    for grant in (
        AuthorizationCodeGrant,
        RefreshTokenGrant,
        ClientCredentialsGrant,
        JWTBearerGrant,
        DeviceCodeGrant,
        TokenExchangeGrant,
    )
}

__all__ = ["GRANTS", "Grant"]
