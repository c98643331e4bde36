"""ApplicationService over Connect JSON: OIDC, SAML and API apps of a project."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_project_service import machine_user, new_project

pytestmark = pytest.mark.anyio

METADATA = b"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="https://sp.example.com/saml">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://sp.example.com/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""

WEB = {
    "redirectUris": ["https://app.example.com/callback"],
    "postLogoutRedirectUris": ["https://app.example.com/"],
    "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
    "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
    "applicationType": "OIDC_APP_TYPE_WEB",
    "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def create(api: Api, project_id: str, name: str = "app", **config: Any) -> dict[str, Any]:
    return await api.ok(
        "application", "CreateApplication", {"projectId": project_id, "name": name, **config}
    )


async def get(api: Api, app_id: str) -> dict[str, Any]:
    return (await api.ok("application", "GetApplication", {"applicationId": app_id}))["application"]


async def test_create_a_web_app_with_a_secret_shown_once(api: Api) -> None:
    project_id = await new_project(api)
    created = await create(api, project_id, "Web", oidcConfiguration=WEB)
    oidc = created["oidcConfiguration"]
    assert oidc["clientId"] and len(oidc["clientSecret"]) >= 43
    assert oidc["nonCompliant"] is False and oidc["complianceProblems"] == []
    app = await get(api, created["applicationId"])
    assert app["name"] == "Web" and app["projectId"] == project_id
    assert app["state"] == "APPLICATION_STATE_ACTIVE"
    config = app["oidcConfiguration"]
    assert "clientSecret" not in config
    assert config["clientId"] == oidc["clientId"]
    assert config["redirectUris"] == WEB["redirectUris"]
    assert config["grantTypes"] == WEB["grantTypes"]
    assert config["responseTypes"] == ["OIDC_RESPONSE_TYPE_CODE"]
    assert config["postLogoutRedirectUris"] == WEB["postLogoutRedirectUris"]
    assert config["applicationType"] == "OIDC_APP_TYPE_WEB"
    assert config["authMethodType"] == "OIDC_AUTH_METHOD_TYPE_BASIC"
    assert config["accessTokenType"] == "OIDC_TOKEN_TYPE_BEARER"
    assert config["version"] == "OIDC_VERSION_1_0"
    assert config["clockSkew"] == "0s"
    assert config["allowedOrigins"] == ["https://app.example.com"]


async def test_the_read_model_finds_the_client_and_checks_its_secret(api: Api) -> None:
    from donjon.core.identity.apps import app_by_client_id, check_client_secret

    project_id = await new_project(api, "Shop", projectRoleAssertion=True)
    oidc = (await create(api, project_id, oidcConfiguration=WEB))["oidcConfiguration"]
    async with api.runtime.db.read() as conn:
        row = await app_by_client_id(conn, api.instance_id, oidc["clientId"])
        assert await app_by_client_id(conn, "other-instance", oidc["clientId"]) is None
    assert row is not None
    assert (row["project_id"], row["project_name"], row["project_role_assertion"]) == (
        project_id,
        "Shop",
        True,
    )
    assert row["redirect_uris"] == WEB["redirectUris"] and row["auth_method_type"] == "basic"
    assert row["client_secret_digest"] != oidc["clientSecret"]
    assert check_client_secret(row, oidc["clientSecret"])
    assert not check_client_secret(row, "wrong")


async def test_generate_client_secret_replaces_the_old_one(api: Api) -> None:
    from donjon.core.identity.apps import app_by_client_id, check_client_secret

    project_id = await new_project(api)
    created = await create(api, project_id, oidcConfiguration=WEB)
    old = created["oidcConfiguration"]["clientSecret"]
    new = await api.ok(
        "application",
        "GenerateClientSecret",
        {"applicationId": created["applicationId"], "projectId": project_id},
    )
    assert new["clientSecret"] != old and new["creationDate"].endswith("Z")
    async with api.runtime.db.read() as conn:
        row = await app_by_client_id(
            conn, api.instance_id, created["oidcConfiguration"]["clientId"]
        )
    assert check_client_secret(row, new["clientSecret"])
    assert not check_client_secret(row, old)


async def test_native_and_user_agent_apps_are_public_clients(api: Api) -> None:
    project_id = await new_project(api)
    native = await create(
        api,
        project_id,
        "Native",
        oidcConfiguration={
            "redirectUris": [
                "com.example.app:/callback",
                "http://127.0.0.1:8765/cb",
                "http://localhost/cb",
                "http://[::1]/cb",
            ],
            "applicationType": "OIDC_APP_TYPE_NATIVE",
            "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
            "skipNativeAppSuccessPage": True,
        },
    )
    assert "clientSecret" not in native["oidcConfiguration"]
    spa = await create(
        api,
        project_id,
        "SPA",
        oidcConfiguration={
            "redirectUris": ["https://spa.example.com/"],
            "applicationType": "OIDC_APP_TYPE_USER_AGENT",
            "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
            "additionalOrigins": ["https://api.example.com"],
            "accessTokenType": "OIDC_TOKEN_TYPE_JWT",
            "clockSkew": "1.5s",
            "loginVersion": {"loginV2": {"baseUri": "https://login.example.com/ui/v2/login"}},
        },
    )
    config = (await get(api, spa["applicationId"]))["oidcConfiguration"]
    assert config["allowedOrigins"] == ["https://spa.example.com", "https://api.example.com"]
    assert config["clockSkew"] == "1.500s"
    assert config["loginVersion"] == {
        "loginV2": {"baseUri": "https://login.example.com/ui/v2/login"}
    }
    # No secret to regenerate for a public client.
    status, code, _ = await api.error(
        "application", "GenerateClientSecret", {"applicationId": spa["applicationId"]}
    )
    assert (status, code) == (400, "failed_precondition")


async def test_development_mode_allows_http_redirects_for_web_apps(api: Api) -> None:
    project_id = await new_project(api)
    body = {**WEB, "redirectUris": ["http://dev.example.com/cb"]}
    status, code, message = await api.error(
        "application",
        "CreateApplication",
        {"projectId": project_id, "name": "x", "oidcConfiguration": body},
    )
    assert (status, code) == (400, "invalid_argument")
    assert message.startswith("oidcConfiguration.redirectUris.0: must use https")
    await create(api, project_id, oidcConfiguration={**body, "developmentMode": True})


async def test_a_non_compliant_config_is_saved_and_reported(api: Api) -> None:
    project_id = await new_project(api)
    created = await create(
        api,
        project_id,
        oidcConfiguration={
            "redirectUris": ["myapp://cb"],
            "applicationType": "OIDC_APP_TYPE_NATIVE",
            "authMethodType": "OIDC_AUTH_METHOD_TYPE_BASIC",
        },
    )
    assert created["oidcConfiguration"]["nonCompliant"] is True
    assert [p["key"] for p in created["oidcConfiguration"]["complianceProblems"]] == [
        "Application.OIDC.V1.Native.AuthMethodType.NotNone"
    ]


async def test_saml_app_from_metadata_xml_and_from_a_url(api: Api) -> None:
    from donjon.core.identity.apps import app_by_entity_id

    project_id = await new_project(api)
    created = await create(
        api,
        project_id,
        "SP",
        samlConfiguration={"metadataXml": b64(METADATA), "loginVersion": {"loginV1": {}}},
    )
    assert created["samlConfiguration"] == {}
    app = await get(api, created["applicationId"])
    assert base64.b64decode(app["samlConfiguration"]["metadataXml"]) == METADATA
    assert app["samlConfiguration"]["loginVersion"] == {"loginV1": {}}
    async with api.runtime.db.read() as conn:
        row = await app_by_entity_id(conn, api.instance_id, "https://sp.example.com/saml")
    assert row is not None and row["id"] == created["applicationId"]
    # Entity ids are unique in the instance.
    status, code, _ = await api.error(
        "application",
        "CreateApplication",
        {
            "projectId": project_id,
            "name": "SP2",
            "samlConfiguration": {"metadataXml": b64(METADATA)},
        },
    )
    assert (status, code) == (409, "already_exists")
    by_url = await create(
        api,
        project_id,
        "SP3",
        samlConfiguration={"metadataUrl": "https://sp3.example.com/metadata"},
    )
    config = (await get(api, by_url["applicationId"]))["samlConfiguration"]
    assert config["metadataUrl"] == "https://sp3.example.com/metadata"
    listed = await api.ok(
        "application",
        "ListApplications",
        {"filters": [{"entityIdFilter": {"entityId": "https://sp.example.com/saml"}}]},
    )
    assert [a["applicationId"] for a in listed["applications"]] == [created["applicationId"]]


async def test_saml_metadata_with_a_dtd_or_entities_is_refused(api: Api) -> None:
    project_id = await new_project(api)
    before = await api.runtime.store.max_position()
    bombs = [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol2;"/>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;"/>',
    ]
    for bomb in bombs:
        status, code, message = await api.error(
            "application",
            "CreateApplication",
            {"projectId": project_id, "name": "x", "samlConfiguration": {"metadataXml": b64(bomb)}},
        )
        assert (status, code) == (400, "invalid_argument")
        assert message.startswith("samlConfiguration.metadataXml: DTDs")
    assert await api.runtime.store.max_position() == before


async def test_api_app_with_basic_or_private_key_jwt(api: Api) -> None:
    project_id = await new_project(api)
    basic = await create(api, project_id, "API", apiConfiguration={})
    assert basic["apiConfiguration"]["clientId"] and basic["apiConfiguration"]["clientSecret"]
    jwt = await create(
        api,
        project_id,
        "API 2",
        apiConfiguration={"authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"},
    )
    assert "clientSecret" not in jwt["apiConfiguration"]
    app = await get(api, jwt["applicationId"])
    assert app["apiConfiguration"] == {
        "clientId": jwt["apiConfiguration"]["clientId"],
        "authMethodType": "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT",
    }
    secret = await api.ok(
        "application", "GenerateClientSecret", {"applicationId": basic["applicationId"]}
    )
    assert secret["clientSecret"] != basic["apiConfiguration"]["clientSecret"]
    await api.ok(
        "application",
        "UpdateApplication",
        {
            "applicationId": jwt["applicationId"],
            "apiConfiguration": {"authMethodType": "API_AUTH_METHOD_TYPE_BASIC"},
        },
    )
    app = await get(api, jwt["applicationId"])
    assert app["apiConfiguration"]["authMethodType"] == "API_AUTH_METHOD_TYPE_BASIC"


async def test_update_changes_only_what_is_sent(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await create(api, project_id, "Old", oidcConfiguration=WEB))["applicationId"]
    await api.ok(
        "application",
        "UpdateApplication",
        {
            "applicationId": app_id,
            "projectId": project_id,
            "name": "New",
            "oidcConfiguration": {
                "redirectUris": ["https://new.example.com/cb"],
                "idTokenRoleAssertion": True,
            },
        },
    )
    app = await get(api, app_id)
    config = app["oidcConfiguration"]
    assert app["name"] == "New"
    assert config["redirectUris"] == ["https://new.example.com/cb"]
    assert config["idTokenRoleAssertion"] is True
    assert config["grantTypes"] == WEB["grantTypes"]
    assert config["postLogoutRedirectUris"] == WEB["postLogoutRedirectUris"]
    before = await api.runtime.store.max_position()
    await api.ok("application", "UpdateApplication", {"applicationId": app_id, "name": "New"})
    assert await api.runtime.store.max_position() == before
    # A configuration of another kind is refused.
    status, code, message = await api.error(
        "application",
        "UpdateApplication",
        {"applicationId": app_id, "samlConfiguration": {"metadataXml": b64(METADATA)}},
    )
    assert (status, code) == (400, "invalid_argument") and message.startswith("samlConfiguration:")


async def test_update_saml_metadata_moves_the_entity_id(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await create(api, project_id, samlConfiguration={"metadataXml": b64(METADATA)}))[
        "applicationId"
    ]
    other = METADATA.replace(b"https://sp.example.com/saml", b"https://sp.example.com/v2")
    await api.ok(
        "application",
        "UpdateApplication",
        {"applicationId": app_id, "samlConfiguration": {"metadataXml": b64(other)}},
    )
    # The old entity id is free again.
    await create(api, project_id, "again", samlConfiguration={"metadataXml": b64(METADATA)})


async def test_deactivate_reactivate_and_delete(api: Api) -> None:
    project_id = await new_project(api)
    created = await create(api, project_id, oidcConfiguration=WEB)
    app_id = created["applicationId"]
    ref = {"applicationId": app_id, "projectId": project_id}
    assert (await api.ok("application", "DeactivateApplication", ref))["deactivationDate"]
    assert (await api.error("application", "DeactivateApplication", ref))[
        1
    ] == "failed_precondition"
    assert (await get(api, app_id))["state"] == "APPLICATION_STATE_INACTIVE"
    assert (await api.ok("application", "ReactivateApplication", ref))["reactivationDate"]
    assert (await api.error("application", "ReactivateApplication", ref))[
        1
    ] == "failed_precondition"
    assert (await api.ok("application", "DeleteApplication", ref))["deletionDate"]
    assert (await api.error("application", "GetApplication", {"applicationId": app_id}))[:2] == (
        404,
        "not_found",
    )
    from donjon.core.identity.apps import app_by_client_id

    async with api.runtime.db.read() as conn:
        assert (
            await app_by_client_id(conn, api.instance_id, created["oidcConfiguration"]["clientId"])
            is None
        )


async def test_deleting_the_project_removes_its_apps(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await create(api, project_id, samlConfiguration={"metadataXml": b64(METADATA)}))[
        "applicationId"
    ]
    await api.ok("project", "DeleteProject", {"projectId": project_id})
    assert (await api.error("application", "GetApplication", {"applicationId": app_id}))[1] == (
        "not_found"
    )
    # Its entity id was freed with it.
    again = await new_project(api, "Again")
    await create(api, again, samlConfiguration={"metadataXml": b64(METADATA)})


async def test_list_applications_filters_sorts_and_pages(api: Api) -> None:
    first, second = await new_project(api, "One"), await new_project(api, "Two")
    web = await create(api, first, "b-web", oidcConfiguration=WEB)
    api_app = await create(api, first, "a-api", apiConfiguration={})
    saml = await create(api, second, "c-saml", samlConfiguration={"metadataXml": b64(METADATA)})
    await api.ok("application", "DeactivateApplication", {"applicationId": saml["applicationId"]})

    async def ids(body: dict[str, Any]) -> list[str]:
        data = await api.ok("application", "ListApplications", body)
        return [a["applicationId"] for a in data["applications"]]

    by_name = await api.ok(
        "application",
        "ListApplications",
        {"sortingColumn": "APPLICATION_SORT_BY_NAME", "pagination": {"asc": True, "limit": 2}},
    )
    assert [a["name"] for a in by_name["applications"]] == ["a-api", "b-web"]
    assert by_name["pagination"] == {"totalResult": "3", "appliedLimit": "2"}
    assert await ids({"filters": [{"projectIdFilter": {"projectId": second}}]}) == [
        saml["applicationId"]
    ]
    assert await ids({"filters": [{"typeFilter": "APPLICATION_TYPE_API"}]}) == [
        api_app["applicationId"]
    ]
    assert await ids({"filters": [{"stateFilter": "APPLICATION_STATE_INACTIVE"}]}) == [
        saml["applicationId"]
    ]
    assert await ids(
        {"filters": [{"clientIdFilter": {"clientId": web["oidcConfiguration"]["clientId"]}}]}
    ) == [web["applicationId"]]
    assert await ids(
        {
            "filters": [
                {"nameFilter": {"name": "WEB", "method": "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE"}}
            ]
        }
    ) == [web["applicationId"]]


async def test_unknown_ids_are_not_found(api: Api) -> None:
    project_id = await new_project(api)
    assert (
        await api.error(
            "application",
            "CreateApplication",
            {"projectId": "nope", "name": "x", "apiConfiguration": {}},
        )
    )[:2] == (404, "not_found")
    for method in (
        "GetApplication",
        "UpdateApplication",
        "DeleteApplication",
        "DeactivateApplication",
        "ReactivateApplication",
        "GenerateClientSecret",
    ):
        assert (await api.error("application", method, {"applicationId": "nope"}))[:2] == (
            404,
            "not_found",
        ), method
        assert (
            await api.error(
                "application", method, {"applicationId": "nope", "projectId": project_id}
            )
        )[:2] == (404, "not_found"), method


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await create(api, project_id, oidcConfiguration=WEB))["applicationId"]
    before = await api.runtime.store.max_position()

    def oidc(**changes: Any) -> dict[str, Any]:
        return {"projectId": project_id, "name": "x", "oidcConfiguration": {**WEB, **changes}}

    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "CreateApplication",
            {"projectId": project_id, "name": "", "apiConfiguration": {}},
            "name:",
        ),
        ("CreateApplication", {"name": "x", "apiConfiguration": {}}, "projectId:"),
        ("CreateApplication", {"projectId": project_id, "name": "x"}, "oidcConfiguration:"),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "apiConfiguration": {},
                "oidcConfiguration": WEB,
            },
            "apiConfiguration:",
        ),
        (
            "CreateApplication",
            {"projectId": project_id, "name": "x", "applicationId": "a b", "apiConfiguration": {}},
            "applicationId:",
        ),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "apiConfiguration": {"authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE"},
            },
            "apiConfiguration.authMethodType:",
        ),
        (
            "CreateApplication",
            oidc(redirectUris=["/relative"]),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(redirectUris=["https://a.example.com/cb#frag"]),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(redirectUris=["myapp://cb"]),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(redirectUris=["http://localhost/cb"]),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(redirectUris=["javascript:alert(1)"], developmentMode=True),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(applicationType="OIDC_APP_TYPE_NATIVE", redirectUris=["http://example.com/cb"]),
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(postLogoutRedirectUris=["ftp:"]),
            "oidcConfiguration.postLogoutRedirectUris.0:",
        ),
        (
            "CreateApplication",
            oidc(responseTypes=["OIDC_RESPONSE_TYPE_ID_TOKEN"]),
            "oidcConfiguration.grantTypes:",
        ),
        (
            "CreateApplication",
            oidc(grantTypes=["OIDC_GRANT_TYPE_IMPLICIT"]),
            "oidcConfiguration.grantTypes:",
        ),
        (
            "CreateApplication",
            oidc(grantTypes=["OIDC_GRANT_TYPE_DEVICE_CODE"]),
            "oidcConfiguration.responseTypes:",
        ),
        (
            "CreateApplication",
            oidc(
                responseTypes=["OIDC_RESPONSE_TYPE_ID_TOKEN"],
                grantTypes=["OIDC_GRANT_TYPE_IMPLICIT"],
                authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
            ),
            "oidcConfiguration.authMethodType:",
        ),
        (
            "CreateApplication",
            oidc(applicationType="OIDC_APP_TYPE_USER_AGENT"),
            "oidcConfiguration.authMethodType:",
        ),
        ("CreateApplication", oidc(responseTypes=["NOPE"]), "oidcConfiguration.responseTypes.0:"),
        ("CreateApplication", oidc(grantTypes=["NOPE"]), "oidcConfiguration.grantTypes.0:"),
        ("CreateApplication", oidc(applicationType="NOPE"), "oidcConfiguration.applicationType:"),
        ("CreateApplication", oidc(authMethodType="NOPE"), "oidcConfiguration.authMethodType:"),
        ("CreateApplication", oidc(accessTokenType="NOPE"), "oidcConfiguration.accessTokenType:"),
        ("CreateApplication", oidc(version="NOPE"), "oidcConfiguration.version:"),
        ("CreateApplication", oidc(clockSkew="6s"), "oidcConfiguration.clockSkew:"),
        ("CreateApplication", oidc(clockSkew="soon"), "oidcConfiguration.clockSkew:"),
        (
            "CreateApplication",
            oidc(additionalOrigins=["https://a.example.com/path"]),
            "oidcConfiguration.additionalOrigins.0:",
        ),
        (
            "CreateApplication",
            oidc(backChannelLogoutUri="http://rp.example.com/logout"),
            "oidcConfiguration.backChannelLogoutUri:",
        ),
        (
            "CreateApplication",
            oidc(loginVersion={"loginV2": {"baseUri": "nope"}}),
            "oidcConfiguration.loginVersion.loginV2.baseUri:",
        ),
        ("CreateApplication", oidc(redirectUris=[]), "oidcConfiguration.redirectUris:"),
        (
            "CreateApplication",
            oidc(redirectUris="https://a.example.com"),
            "oidcConfiguration.redirectUris:",
        ),
        (
            "CreateApplication",
            {"projectId": project_id, "name": "x", "samlConfiguration": {}},
            "samlConfiguration.metadataXml:",
        ),
        (
            "CreateApplication",
            {"projectId": project_id, "name": "x", "samlConfiguration": {"metadataXml": "!!!"}},
            "samlConfiguration.metadataXml:",
        ),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "samlConfiguration": {"metadataXml": b64(b"<a/>")},
            },
            "samlConfiguration.metadataXml:",
        ),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "samlConfiguration": {"metadataXml": b64(b"<unclosed")},
            },
            "samlConfiguration.metadataXml:",
        ),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "samlConfiguration": {"metadataUrl": "file:///etc/passwd"},
            },
            "samlConfiguration.metadataUrl:",
        ),
        (
            "CreateApplication",
            {
                "projectId": project_id,
                "name": "x",
                "samlConfiguration": {
                    "metadataUrl": "https://a.example.com/m",
                    "metadataXml": b64(METADATA),
                },
            },
            "samlConfiguration.metadataXml:",
        ),
        ("GetApplication", {}, "applicationId:"),
        ("UpdateApplication", {"applicationId": app_id, "name": ""}, "name:"),
        (
            "UpdateApplication",
            {"applicationId": app_id, "oidcConfiguration": {"redirectUris": ["nope"]}},
            "oidcConfiguration.redirectUris.0:",
        ),
        (
            "UpdateApplication",
            {
                "applicationId": app_id,
                "oidcConfiguration": {"applicationType": "OIDC_APP_TYPE_USER_AGENT"},
            },
            "oidcConfiguration.authMethodType:",
        ),
        (
            "UpdateApplication",
            {"applicationId": app_id, "apiConfiguration": {}},
            "apiConfiguration:",
        ),
        ("UpdateApplication", {}, "applicationId:"),
        ("DeleteApplication", {}, "applicationId:"),
        ("DeactivateApplication", {}, "applicationId:"),
        ("ReactivateApplication", {}, "applicationId:"),
        ("GenerateClientSecret", {}, "applicationId:"),
        ("ListApplications", {"pagination": {"limit": 5000}}, "pagination.limit:"),
        ("ListApplications", {"sortingColumn": "NOPE"}, "sortingColumn:"),
        ("ListApplications", {"filters": [{}]}, "filters.0:"),
        ("ListApplications", {"filters": [{"stateFilter": "NOPE"}]}, "filters.0.stateFilter:"),
        ("ListApplications", {"filters": [{"typeFilter": "NOPE"}]}, "filters.0.typeFilter:"),
        (
            "ListApplications",
            {"filters": [{"nameFilter": {"name": "a", "method": "NOPE"}}]},
            "filters.0.nameFilter.method:",
        ),
    ]
    for method, body, prefix in cases:
        status, code, message = await api.error("application", method, body)
        assert (status, code) == (400, "invalid_argument"), (method, body, message)
        assert message.startswith(prefix), (method, body, message)
    assert await api.runtime.store.max_position() == before


async def test_a_user_without_membership_is_denied_and_sees_nothing(api: Api) -> None:
    project_id = await new_project(api)
    app_id = (await create(api, project_id, oidcConfiguration=WEB))["applicationId"]
    nobody = await machine_user(api)
    before = await api.runtime.store.max_position()
    ref = {"applicationId": app_id, "projectId": project_id}
    denied = [
        ("CreateApplication", {"projectId": project_id, "name": "x", "apiConfiguration": {}}),
        ("GetApplication", {"applicationId": app_id}),
        ("UpdateApplication", {**ref, "name": "y"}),
        ("DeactivateApplication", ref),
        ("ReactivateApplication", ref),
        ("DeleteApplication", ref),
        ("GenerateClientSecret", ref),
    ]
    for method, body in denied:
        assert (await nobody.error("application", method, body))[:2] == (
            403,
            "permission_denied",
        ), method
    assert (await nobody.ok("application", "ListApplications"))["applications"] == []
    assert await api.runtime.store.max_position() == before


async def test_a_project_owner_manages_the_apps_of_its_project_only(api: Api) -> None:
    mine, other = await new_project(api, "Mine"), await new_project(api, "Other")
    theirs = (await create(api, other, apiConfiguration={}))["applicationId"]
    owner = await machine_user(api, memberships=[("project", mine, api.org_id, ["PROJECT_OWNER"])])
    app_id = (await create(owner, mine, oidcConfiguration=WEB))["applicationId"]
    listed = await owner.ok("application", "ListApplications")
    assert [a["applicationId"] for a in listed["applications"]] == [app_id]
    assert (await owner.error("application", "GetApplication", {"applicationId": theirs}))[1] == (
        "permission_denied"
    )


async def test_removing_an_org_with_its_projects_frees_their_entity_ids(api: Api) -> None:
    from donjon.core.identity import orgs, projects

    org_id = (await api.ok("org", "AddOrganization", {"name": "Leaving"}))["organizationId"]
    project_id = await new_project(api, organizationId=org_id)
    await create(api, project_id, samlConfiguration={"metadataXml": b64(METADATA)})
    store = api.runtime.store
    async with api.runtime.db.read() as conn:
        changes = await projects.remove_org_projects(store, conn, api.instance_id, org_id)
    org = await orgs.OrgState.load(store, api.instance_id, org_id)
    await store.push([orgs.remove_org(org), *changes], creator=api.admin_id)
    assert (await api.ok("application", "ListApplications"))["applications"] == []
    await create(api, await new_project(api), samlConfiguration={"metadataXml": b64(METADATA)})


async def test_responses_parse_with_the_official_sdk_models(api: Api) -> None:
    from zitadel_client.models import (
        ApplicationServiceCreateApplicationResponse,
        ApplicationServiceGetApplicationResponse,
        ApplicationServiceListApplicationsResponse,
    )

    project_id = await new_project(api)
    native = {
        "redirectUris": ["myapp://cb"],
        "applicationType": "OIDC_APP_TYPE_NATIVE",
        "loginVersion": {"loginV1": {}},
    }
    created = [
        await create(api, project_id, "web", oidcConfiguration=WEB),
        await create(api, project_id, "native", oidcConfiguration=native),
        await create(api, project_id, "saml", samlConfiguration={"metadataXml": b64(METADATA)}),
        await create(api, project_id, "api", apiConfiguration={}),
    ]
    for data in created:
        parsed = ApplicationServiceCreateApplicationResponse.from_dict(data)
        assert parsed is not None and parsed.application_id == data["applicationId"]
        app = await api.ok(
            "application", "GetApplication", {"applicationId": data["applicationId"]}
        )
        assert ApplicationServiceGetApplicationResponse.from_dict(app) is not None
    listed = await api.ok("application", "ListApplications")
    parsed_list = ApplicationServiceListApplicationsResponse.from_dict(listed)
    assert parsed_list is not None and len(parsed_list.applications or []) == 4
