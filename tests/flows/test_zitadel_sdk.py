"""ZITADEL's own Python SDK (`zitadel-client`) drives a real donjon, end to end.

The whole administration lifecycle of an application developer: an org, a
person, a project with roles, an OIDC app, an authorization; find them again;
lock and unlock the person; read the audit trail; delete it all. And what a
caller without memberships gets: permission denied, and empty lists.
"""

from __future__ import annotations

import httpx
import pytest
from zitadel_client.exceptions import ApiError
from zitadel_client.models import (
    ApplicationServiceCreateApplicationRequest,
    ApplicationServiceCreateOIDCApplicationRequest,
    ApplicationServiceDeleteApplicationRequest,
    ApplicationServiceGetApplicationRequest,
    ApplicationServiceOIDCApplicationType,
    ApplicationServiceOIDCAuthMethodType,
    ApplicationServiceOIDCGrantType,
    ApplicationServiceOIDCResponseType,
    AuthorizationServiceAuthorizationsSearchFilter,
    AuthorizationServiceCreateAuthorizationRequest,
    AuthorizationServiceDeleteAuthorizationRequest,
    AuthorizationServiceInIDsFilter,
    AuthorizationServiceListAuthorizationsRequest,
    OrganizationServiceAddOrganizationRequest,
    OrganizationServiceDeleteOrganizationRequest,
    OrganizationServiceListOrganizationsRequest,
    OrganizationServiceOrganizationNameQuery,
    OrganizationServiceSearchQuery,
    ProjectServiceAddProjectRoleRequest,
    ProjectServiceCreateProjectRequest,
    ProjectServiceDeleteProjectRequest,
    ProjectServiceListProjectRolesRequest,
    UserServiceAddHumanUserRequest,
    UserServiceAddPersonalAccessTokenRequest,
    UserServiceCreateUserRequest,
    UserServiceDeleteUserRequest,
    UserServiceGetUserByIDRequest,
    UserServiceListUsersRequest,
    UserServiceLockUserRequest,
    UserServiceMachine,
    UserServiceOrganization,
    UserServicePassword,
    UserServiceSearchQuery,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
    UserServiceTextQueryMethod,
    UserServiceUnlockUserRequest,
    UserServiceUserNameQuery,
)

from tests.flows.conftest import DonjonServer, sdk


def add_person(z, org_id: str, username: str) -> str:  # type: ignore[no-untyped-def]
    return z.users.add_human_user(
        UserServiceAddHumanUserRequest(
            username=username,
            organization=UserServiceOrganization(org_id=org_id),
            profile=UserServiceSetHumanProfile(given_name="Alice", family_name="Liddell"),
            email=UserServiceSetHumanEmail(email=f"{username}@example.com", is_verified=True),
            password=UserServicePassword(password="Wonder1and!", change_required=False),
        )
    ).user_id


def test_the_sdk_runs_the_whole_administration_lifecycle(donjon_server: DonjonServer) -> None:
    z = sdk(donjon_server.url, donjon_server.pat)

    org_id = z.organizations.add_organization(
        OrganizationServiceAddOrganizationRequest(name="ACME")
    ).organization_id
    found = z.organizations.list_organizations(
        OrganizationServiceListOrganizationsRequest(
            queries=[
                OrganizationServiceSearchQuery(
                    name_query=OrganizationServiceOrganizationNameQuery(name="ACME")
                )
            ]
        )
    )
    assert [o.id for o in found.result] == [org_id]
    assert found.result[0].primary_domain == "acme.localhost"

    user_id = add_person(z, org_id, "alice")
    user = z.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    assert user.human.profile.given_name == "Alice"
    assert user.preferred_login_name == "alice@acme.localhost"
    assert user.state == "USER_STATE_ACTIVE"
    assert user.details.resource_owner == org_id

    project_id = z.projects.create_project(
        ProjectServiceCreateProjectRequest(organization_id=org_id, name="Shop")
    ).project_id
    for key in ("admin", "reader"):
        z.projects.add_project_role(
            ProjectServiceAddProjectRoleRequest(
                project_id=project_id, role_key=key, display_name=key.title()
            )
        )
    roles = z.projects.list_project_roles(
        ProjectServiceListProjectRolesRequest(project_id=project_id)
    )
    assert sorted(r.key for r in roles.project_roles) == ["admin", "reader"]

    app = z.applications.create_application(
        ApplicationServiceCreateApplicationRequest(
            project_id=project_id,
            name="web",
            oidc_configuration=ApplicationServiceCreateOIDCApplicationRequest(
                redirect_uris=["https://shop.example/callback"],
                response_types=[ApplicationServiceOIDCResponseType.OIDC_RESPONSE_TYPE_CODE],
                grant_types=[ApplicationServiceOIDCGrantType.OIDC_GRANT_TYPE_AUTHORIZATION_CODE],
                application_type=ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_WEB,
                auth_method_type=ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_BASIC,
            ),
        )
    )
    assert app.oidc_configuration.client_id
    assert len(app.oidc_configuration.client_secret) >= 43  # 256 bits, base64url
    got_app = z.applications.get_application(
        ApplicationServiceGetApplicationRequest(application_id=app.application_id)
    )
    assert got_app.application.oidc_configuration.redirect_uris == ["https://shop.example/callback"]

    authorization_id = z.authorizations.create_authorization(
        AuthorizationServiceCreateAuthorizationRequest(
            user_id=user_id, project_id=project_id, organization_id=org_id, role_keys=["reader"]
        )
    ).id
    authorizations = z.authorizations.list_authorizations(
        AuthorizationServiceListAuthorizationsRequest(
            filters=[
                AuthorizationServiceAuthorizationsSearchFilter(
                    in_user_ids=AuthorizationServiceInIDsFilter(ids=[user_id])
                )
            ]
        )
    ).authorizations
    assert [(a.id, a.roles[0].key) for a in authorizations] == [(authorization_id, "reader")]

    listed = z.users.list_users(
        UserServiceListUsersRequest(
            queries=[
                UserServiceSearchQuery(
                    user_name_query=UserServiceUserNameQuery(
                        user_name="ali",
                        method=UserServiceTextQueryMethod.TEXT_QUERY_METHOD_STARTS_WITH,
                    )
                )
            ]
        )
    )
    assert [u.user_id for u in listed.result] == [user_id]

    z.users.lock_user(UserServiceLockUserRequest(user_id=user_id))
    locked = z.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    assert locked.state == "USER_STATE_LOCKED"
    z.users.unlock_user(UserServiceUnlockUserRequest(user_id=user_id))
    unlocked = z.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    assert unlocked.state == "USER_STATE_ACTIVE"

    # The audit trail has every change, with its editor (the SDK has no v2
    # method for it: ZITADEL serves it on its admin API).
    trail = httpx.post(
        f"{donjon_server.url}/zitadel.admin.v1.AdminService/ListEvents",
        json={"aggregateId": user_id, "asc": True},
        headers={"Authorization": f"Bearer {donjon_server.pat}"},
    )
    assert trail.status_code == 200, trail.text
    types = [e["type"]["type"] for e in trail.json()["events"]]
    assert types[0] == "user.human.added"
    assert "user.locked" in types and "user.unlocked" in types
    assert "$argon2" not in trail.text  # hashes and digests are redacted

    z.authorizations.delete_authorization(
        AuthorizationServiceDeleteAuthorizationRequest(id=authorization_id)
    )
    z.applications.delete_application(
        ApplicationServiceDeleteApplicationRequest(application_id=app.application_id)
    )
    z.projects.delete_project(ProjectServiceDeleteProjectRequest(project_id=project_id))
    z.users.delete_user(UserServiceDeleteUserRequest(user_id=user_id))
    with pytest.raises(ApiError) as gone:
        z.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
    assert gone.value.code == 404
    z.organizations.delete_organization(
        OrganizationServiceDeleteOrganizationRequest(organization_id=org_id)
    )
    # The user name is free again.
    other_org = z.organizations.add_organization(
        OrganizationServiceAddOrganizationRequest(name="ACME 2")
    ).organization_id
    assert add_person(z, other_org, "alice")


def test_a_caller_without_memberships_is_denied_and_sees_nothing(
    donjon_server: DonjonServer,
) -> None:
    admin = sdk(donjon_server.url, donjon_server.pat)
    org_id = admin.organizations.add_organization(
        OrganizationServiceAddOrganizationRequest(name="Outsiders")
    ).organization_id
    bot_id = admin.users.create_user(
        UserServiceCreateUserRequest(
            organization_id=org_id,
            username="bot",
            machine=UserServiceMachine(name="a bot", description="no memberships"),
        )
    ).id
    token = admin.users.add_personal_access_token(
        UserServiceAddPersonalAccessTokenRequest(user_id=bot_id)
    ).token
    add_person(admin, org_id, "victim")
    bot = sdk(donjon_server.url, token)

    for attempt in (
        lambda: bot.organizations.add_organization(
            OrganizationServiceAddOrganizationRequest(name="Mine")
        ),
        lambda: bot.projects.create_project(
            ProjectServiceCreateProjectRequest(organization_id=org_id, name="Mine")
        ),
        lambda: add_person(bot, org_id, "intruder"),
        lambda: bot.users.delete_user(UserServiceDeleteUserRequest(user_id=bot_id + "0")),
    ):
        with pytest.raises(ApiError) as denied:
            attempt()
        assert denied.value.code in (403, 404)
    with pytest.raises(ApiError) as denied:
        bot.users.lock_user(
            UserServiceLockUserRequest(
                user_id=admin.users.list_users(UserServiceListUsersRequest()).result[0].user_id
            )
        )
    assert denied.value.code == 403
    assert bot.organizations.list_organizations(
        OrganizationServiceListOrganizationsRequest()
    ).result in (None, [])
    visible = bot.users.list_users(UserServiceListUsersRequest()).result or []
    assert [u.user_id for u in visible] in ([], [bot_id])  # at most itself
