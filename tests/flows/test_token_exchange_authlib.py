"""Token exchange (RFC 8693) impersonation with Authlib's OAuth2Client against a real donjon.

The administrator (PAT) sets the stage through the management API: an app
allowed to exchange tokens, a person, a support robot holding
ORG_END_USER_IMPERSONATOR; impersonation is refused until ZITADEL's SDK
enables it in the security settings. The robot gets its own token (client
credentials, Authlib); the app then exchanges it as actor for the person's tokens (Authlib's
fetch_token with the token exchange grant); the JWT access token verifies
against donjon's JWKS and names the robot in `act`, and Authlib's
introspect_token shows the same for the opaque token.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

from tests.flows.conftest import DonjonServer, sdk

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from zitadel_client.models import SettingsServiceSetSecuritySettingsRequest

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using implicit key type"),
]

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
USER_ID = "urn:zitadel:params:oauth:token-type:user_id"


def connect(server: DonjonServer, service: str, method: str, body: dict[str, Any]) -> Any:
    r = httpx.post(
        f"{server.url}/zitadel.{service}/{method}",
        json=body,
        headers={"authorization": f"Bearer {server.pat}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_authlib_impersonates_a_user_by_token_exchange(donjon_server: DonjonServer) -> None:
    server = donjon_server
    discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=30).json()
    assert EXCHANGE in discovery["grant_types_supported"]
    token_endpoint = discovery["token_endpoint"]
    project_id = connect(server, "project.v2.ProjectService", "CreateProject", {"name": "Help"})[
        "projectId"
    ]
    app = connect(
        server,
        "application.v2.ApplicationService",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "helpdesk",
            "oidcConfiguration": {
                "redirectUris": ["https://help.example.com/callback"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": [
                    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
                    "OIDC_GRANT_TYPE_TOKEN_EXCHANGE",
                ],
                "applicationType": "OIDC_APP_TYPE_WEB",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
                "idTokenUserinfoAssertion": True,
            },
        },
    )["oidcConfiguration"]
    alice = connect(
        server,
        "user.v2.UserService",
        "AddHumanUser",
        {
            "username": "alice",
            "profile": {"givenName": "Alice", "familyName": "Liddell"},
            "email": {"email": "alice@example.com", "isVerified": True},
        },
    )["userId"]
    robot = connect(
        server,
        "user.v2.UserService",
        "CreateUser",
        {"username": "support", "machine": {"name": "S"}},
    )["id"]
    secret = connect(server, "user.v2.UserService", "AddSecret", {"userId": robot})["clientSecret"]
    org_id = connect(server, "user.v2.UserService", "GetUserByID", {"userId": robot})["user"][
        "details"
    ]["resourceOwner"]
    connect(
        server,
        "internal_permission.v2.InternalPermissionService",
        "CreateAdministrator",
        {
            "userId": robot,
            "resource": {"organizationId": org_id},
            "roles": ["ORG_END_USER_IMPERSONATOR"],
        },
    )

    with OAuth2Client(
        client_id="support",
        client_secret=secret,
        scope=f"openid profile urn:zitadel:iam:org:project:id:{project_id}:aud",
    ) as robot_client:
        actor_token = robot_client.fetch_token(token_endpoint, grant_type="client_credentials")[
            "access_token"
        ]

    with OAuth2Client(client_id=app["clientId"], client_secret=app["clientSecret"]) as helpdesk:
        impersonate = {
            "subject_token": alice,
            "subject_token_type": USER_ID,
            "actor_token": actor_token,
            "actor_token_type": ACCESS,
            "scope": "openid profile email",
        }
        # Impersonation is off until the security settings allow it.
        with pytest.raises(OAuthError) as refused:
            helpdesk.fetch_token(token_endpoint, grant_type=EXCHANGE, **impersonate)
        assert refused.value.error == "invalid_request"
        assert "enableImpersonation" in str(refused.value.description)
        # ZITADEL's own SDK switches it on, as an operator would.
        admin = sdk(server.url, server.pat)
        admin.settings.set_security_settings(
            SettingsServiceSetSecuritySettingsRequest(enable_impersonation=True)
        )
        assert admin.settings.get_security_settings({}).settings.enable_impersonation is True

        token = helpdesk.fetch_token(
            token_endpoint, grant_type=EXCHANGE, requested_token_type=JWT, **impersonate
        )
        assert token["issued_token_type"] == JWT and token["token_type"] == "Bearer"
        keys = JsonWebKey.import_key_set(httpx.get(discovery["jwks_uri"], timeout=30).json())
        claims = jwt.decode(token["access_token"], keys)
        claims.validate()
        act = {"iss": discovery["issuer"], "sub": robot}
        assert claims["sub"] == alice and claims["act"] == act
        id_claims = jwt.decode(token["id_token"], keys)
        assert id_claims["email"] == "alice@example.com" and id_claims["act"] == act

        opaque = helpdesk.fetch_token(token_endpoint, grant_type=EXCHANGE, **impersonate)
        assert opaque["issued_token_type"] == ACCESS
        seen = helpdesk.introspect_token(
            discovery["introspection_endpoint"], token=opaque["access_token"]
        ).json()
        assert seen["active"] is True and seen["sub"] == alice and seen["act"] == act
