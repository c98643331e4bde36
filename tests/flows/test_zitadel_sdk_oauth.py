"""ZITADEL's Python SDK authenticates with OAuth against a real donjon.

The admin (personal access token) makes a machine user, gives it a client
secret and a key and makes it an administrator, all through the SDK; then
`Zitadel.with_client_credentials` and `Zitadel.with_private_key` fetch
access tokens from donjon's token endpoint (found through discovery) and
call the management API with them.
"""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import httpx
import pytest
from zitadel_client.models import (
    InternalPermissionServiceCreateAdministratorRequest,
    InternalPermissionServiceResourceType,
    OrganizationServiceListOrganizationsRequest,
    UserServiceAddKeyRequest,
    UserServiceAddSecretRequest,
    UserServiceCreateUserRequest,
    UserServiceMachine,
)

from tests.flows.conftest import DonjonServer, sdk

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def zitadel():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib's deprecation notice at import
        import zitadel_client

    return zitadel_client.Zitadel


def test_the_sdk_authenticates_with_client_credentials_and_a_private_key(
    donjon_server: DonjonServer, tmp_path: Path
) -> None:
    admin = sdk(donjon_server.url, donjon_server.pat)
    user_id = admin.users.create_user(
        UserServiceCreateUserRequest(username="robot", machine=UserServiceMachine(name="Robot"))
    ).id
    admin.internal_permissions.create_administrator(
        InternalPermissionServiceCreateAdministratorRequest(
            user_id=user_id,
            resource=InternalPermissionServiceResourceType(instance=True),
            roles=["IAM_OWNER"],
        )
    )
    secret = admin.users.add_secret(UserServiceAddSecretRequest(user_id=user_id)).client_secret
    key = admin.users.add_key(UserServiceAddKeyRequest(user_id=user_id))
    key_file = tmp_path / "robot.json"
    content = key.key_content
    key_file.write_bytes(
        base64.b64decode(content) if isinstance(content, str) else content  # type: ignore[arg-type]
    )

    by_secret = zitadel().with_client_credentials(donjon_server.url, "robot", secret)
    orgs = by_secret.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
    assert orgs.result and orgs.result[0].name

    by_key = zitadel().with_private_key(donjon_server.url, str(key_file))
    again = by_key.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
    assert [o.id for o in again.result] == [o.id for o in orgs.result]

    # A wrong secret gets no token, so no call either.
    wrong = zitadel().with_client_credentials(donjon_server.url, "robot", "not-the-secret")
    try:
        wrong.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
    except Exception as exc:  # noqa: BLE001 - the SDK wraps the OAuth error
        assert "invalid_client" in str(exc) or "401" in str(exc)
    else:
        raise AssertionError("a wrong client secret authenticated")

    # The JWKS a resource server would fetch is there, with its caching header.
    jwks = httpx.get(f"{donjon_server.url}/oauth/v2/keys")
    assert jwks.status_code == 200 and jwks.json()["keys"]
    assert jwks.headers["cache-control"] == "public, max-age=300"
