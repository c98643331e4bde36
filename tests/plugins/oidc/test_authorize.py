"""The authorization endpoint and the custom login API (OIDCService): what is accepted,
what is refused and where each error goes (RFC 6749 §4.1.2.1, RFC 9700, RFC 9207)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.plugins.oidc.login_support import (
    OIDC,
    REDIRECT,
    add_person,
    authorize,
    callback,
    fragment_of,
    oidc_app,
    pkce,
    query_of,
    session,
    start,
)
from tests.plugins.oidc.support import issuer, second_instance

pytestmark = pytest.mark.anyio


def code_params(app: Any, **extra: str) -> dict[str, str]:
    return {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid",
        **extra,
    }


async def test_a_valid_request_is_stored_and_sent_to_the_login(api: Api) -> None:
    app = await oidc_app(api)
    _verifier, challenge = pkce()
    for post in (False, True):
        r = await authorize(
            api,
            code_params(
                app,
                scope="openid profile offline_access",
                state="xyz",
                nonce="abc",
                prompt="login",
                max_age="600",
                login_hint="alice@donjon.localhost",
                code_challenge=challenge,
                code_challenge_method="S256",
            ),
            post=post,
        )
        assert r.status_code == 302
        assert r.headers["location"].startswith(issuer(api) + "/ui/login/login?authRequest=")
        assert r.headers["cache-control"] == "no-store"
    auth_request_id = query_of(r.headers["location"])["authRequest"]
    got = (await api.ok(OIDC, "GetAuthRequest", {"authRequestId": auth_request_id}))["authRequest"]
    assert got["id"] == auth_request_id and got["clientId"] == app.client_id
    assert got["scope"] == ["openid", "profile", "offline_access"]
    assert got["redirectUri"] == REDIRECT and got["prompt"] == ["PROMPT_LOGIN"]
    assert got["loginHint"] == "alice@donjon.localhost" and got["maxAge"] == "600s"
    assert got["creationDate"].endswith("Z")


async def test_the_published_read_has_the_app_name_and_state(api: Api) -> None:
    from donjon.plugins.oidc.auth_requests import get_auth_request

    app = await oidc_app(api)
    auth_request_id = await start(api, app, state="s1", scope="openid")
    async with api.runtime.db.read() as conn:
        row = await get_auth_request(conn, api.instance_id, auth_request_id)
        assert await get_auth_request(conn, "other", auth_request_id) is None
    assert row is not None
    assert (row["app_name"], row["oauth_state"], row["client_id"]) == ("web", "s1", app.client_id)


async def test_the_custom_login_finishes_with_a_code_state_and_iss(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    auth_request_id = await start(api, app, state="st-9", scope="openid")
    url = await callback(api, auth_request_id, await session(api))
    assert url.startswith(REDIRECT + "?")
    params = query_of(url)
    assert params["state"] == "st-9" and params["iss"] == issuer(api) and len(params["code"]) >= 43
    # Finished: no longer readable, cannot be finished again.
    status, code, message = await api.error(
        OIDC, "GetAuthRequest", {"authRequestId": auth_request_id}
    )
    assert (status, code) == (404, "not_found")
    s = await session(api)
    body = {
        "authRequestId": auth_request_id,
        "session": {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]},
    }
    _status, code, message = await api.error(OIDC, "CreateCallback", body)
    assert code == "failed_precondition" and message.startswith("authRequestId:")


async def test_the_login_can_refuse_with_an_error(api: Api) -> None:
    app = await oidc_app(api)
    auth_request_id = await start(api, app, state="st")
    body = {
        "authRequestId": auth_request_id,
        "error": {"error": "ERROR_REASON_ACCESS_DENIED", "errorDescription": "no thanks"},
    }
    url = (await api.ok(OIDC, "CreateCallback", body))["callbackUrl"]
    assert query_of(url) == {
        "error": "access_denied",
        "error_description": "no thanks",
        "state": "st",
        "iss": issuer(api),
    }


async def test_callback_needs_the_current_session_token_and_an_authenticated_session(
    api: Api,
) -> None:
    app = await oidc_app(api)
    await add_person(api)
    auth_request_id = await start(api, app)
    s = await session(api)
    wrong = {
        "authRequestId": auth_request_id,
        "session": {"sessionId": s["sessionId"], "sessionToken": "nope"},
    }
    _s, code, message = await api.error(OIDC, "CreateCallback", wrong)
    assert code == "permission_denied" and message.startswith("sessionToken:")
    # A session that checked only the user has not authenticated anyone.
    half = await api.ok(
        "zitadel.session.v2.SessionService",
        "CreateSession",
        {"checks": {"user": {"loginName": "alice@donjon.localhost"}}},
    )
    body = {"authRequestId": auth_request_id, "session": half}
    body["session"] = {"sessionId": half["sessionId"], "sessionToken": half["sessionToken"]}
    _s, code, _m = await api.error(OIDC, "CreateCallback", body)
    assert code == "failed_precondition"
    # A deactivated user may not log in.
    me = s["sessionId"]
    await api.ok("user", "DeactivateUser", {"userId": (await _user_id(api))})
    good = {
        "authRequestId": auth_request_id,
        "session": {"sessionId": me, "sessionToken": s["sessionToken"]},
    }
    _s, code, message = await api.error(OIDC, "CreateCallback", good)
    assert code == "failed_precondition" and "inactive" in message


async def _user_id(api: Api) -> str:
    found = await api.ok(
        "user", "ListUsers", {"queries": [{"userNameQuery": {"userName": "alice"}}]}
    )
    return found["result"][0]["userId"]


async def test_the_oidc_service_needs_session_link(api: Api) -> None:
    app = await oidc_app(api)
    auth_request_id = await start(api, app)
    anonymous = api.as_token(None)
    status, _code, _m = await anonymous.error(
        OIDC, "GetAuthRequest", {"authRequestId": auth_request_id}
    )
    assert status == 401


async def test_project_authorization_required_is_enforced(api: Api) -> None:
    project_id = (
        await api.ok("project", "CreateProject", {"name": "Strict", "authorizationRequired": True})
    )["projectId"]
    app = await oidc_app(api, project_id)
    await add_person(api)
    auth_request_id = await start(api, app)
    body = {"authRequestId": auth_request_id, "session": {}}
    s = await session(api)
    body["session"] = {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]}
    _s, code, message = await api.error(OIDC, "CreateCallback", body)
    assert code == "failed_precondition" and "not authorized" in message


# -- errors that must not be redirected -----------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "unknown"},
        {"client_id": ""},
        {"redirect_uri": "https://evil.example.com/callback"},
        {"redirect_uri": REDIRECT + "/"},
        {"redirect_uri": REDIRECT + "?x=1"},
        {"redirect_uri": "https://APP.example.com/callback"},
        {"redirect_uri": ""},
        {"request_uri": "urn:x"},
    ],
)
async def test_a_bad_client_or_redirect_uri_gets_an_error_page(
    api: Api, change: dict[str, str]
) -> None:
    app = await oidc_app(api)
    r = await authorize(api, {**code_params(app, state="s"), **change})
    assert r.status_code == 400 and "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")


async def test_a_repeated_parameter_gets_an_error_page(api: Api) -> None:
    app = await oidc_app(api)
    r = await api.client.get(
        f"/oauth/v2/authorize?client_id={app.client_id}&client_id={app.client_id}"
        f"&redirect_uri={REDIRECT}&response_type=code"
    )
    assert r.status_code == 400


async def test_an_inactive_app_gets_an_error_page(api: Api) -> None:
    app = await oidc_app(api)
    await api.ok(
        "application",
        "DeactivateApplication",
        {"applicationId": app.app_id, "projectId": app.project_id},
    )
    r = await authorize(api, code_params(app))
    assert r.status_code == 400


async def test_an_app_of_another_instance_is_unknown(api: Api, tmp_path: Any) -> None:
    app = await oidc_app(api)
    other = await second_instance(api, tmp_path)
    r = await other.client.get("/oauth/v2/authorize", params=code_params(app))
    assert r.status_code == 400


# -- errors sent back to the client ---------------------------------------------------


async def error_of(api: Api, params: dict[str, str]) -> dict[str, str]:
    r = await authorize(api, params)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT), location
    got = query_of(location) or fragment_of(location)
    assert got["iss"] == issuer(api)
    return got


async def test_plain_pkce_is_refused(api: Api) -> None:
    app = await oidc_app(api)
    verifier, _challenge = pkce()
    for method in ("plain", ""):
        got = await error_of(
            api,
            code_params(app, state="s", code_challenge=verifier, code_challenge_method=method),
        )
        assert got["error"] == "invalid_request" and got["state"] == "s"
        assert "S256" in got["error_description"]


async def test_a_public_client_must_use_pkce(api: Api) -> None:
    app = await oidc_app(
        api,
        applicationType="OIDC_APP_TYPE_USER_AGENT",
        authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
    )
    got = await error_of(api, code_params(app, state="s"))
    assert got["error"] == "invalid_request" and "public" in got["error_description"]
    _verifier, challenge = pkce()
    await start(api, app, code_challenge=challenge, code_challenge_method="S256")


async def test_implicit_is_refused_unless_the_app_allows_it(api: Api) -> None:
    app = await oidc_app(api)
    for response_type in ("id_token", "id_token token", "token"):
        got = await error_of(
            api, code_params(app, response_type=response_type, nonce="n", state="s")
        )
        assert got["error"] in ("unauthorized_client", "unsupported_response_type")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"response_type": ""}, "invalid_request"),
        ({"response_type": "code token"}, "unsupported_response_type"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"scope": "openid urn:zitadel:iam:org:project:id:404:aud"}, "invalid_scope"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_bad_parameters_are_sent_back_with_state_and_iss(
    api: Api, extra: dict[str, str], error: str
) -> None:
    app = await oidc_app(api)
    got = await error_of(api, {**code_params(app, state="st"), **extra})
    assert (got["error"], got["state"]) == (error, "st")


async def test_native_apps_may_use_any_loopback_port(api: Api) -> None:
    app = await oidc_app(
        api,
        redirectUris=["http://127.0.0.1/callback", "http://[::1]/cb"],
        applicationType="OIDC_APP_TYPE_NATIVE",
        authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
    )
    _verifier, challenge = pkce()
    pk = {"code_challenge": challenge, "code_challenge_method": "S256", "response_type": "code"}
    for uri in (
        "http://127.0.0.1:51234/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:8/cb",
    ):
        r = await authorize(api, {"client_id": app.client_id, "redirect_uri": uri, **pk})
        assert r.status_code == 302 and "/ui/login/login" in r.headers["location"], uri
    for uri in (
        "http://127.0.0.1:51234/other",
        "http://localhost:51234/callback",
        "https://127.0.0.1:5/callback",
    ):
        r = await authorize(api, {"client_id": app.client_id, "redirect_uri": uri, **pk})
        assert r.status_code == 400, uri
    # The port rule is for native apps only.
    web = await oidc_app(api, redirectUris=["http://127.0.0.1/callback"], developmentMode=True)
    r = await authorize(
        api,
        {
            "client_id": web.client_id,
            "redirect_uri": "http://127.0.0.1:9/callback",
            "response_type": "code",
        },
    )
    assert r.status_code == 400


async def test_the_implicit_flow_for_an_app_that_allows_it(api: Api) -> None:
    app = await oidc_app(
        api,
        responseTypes=["OIDC_RESPONSE_TYPE_ID_TOKEN_TOKEN", "OIDC_RESPONSE_TYPE_ID_TOKEN"],
        grantTypes=["OIDC_GRANT_TYPE_IMPLICIT"],
        applicationType="OIDC_APP_TYPE_USER_AGENT",
        authMethodType="OIDC_AUTH_METHOD_TYPE_NONE",
    )
    await add_person(api)
    params = {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s",
    }
    got = await error_of(api, {**params, "response_type": "id_token token"})
    assert got["error"] == "invalid_request" and "nonce" in got["error_description"]
    got = await error_of(api, {**params, "response_type": "code"})
    assert got["error"] == "unauthorized_client"
    r = await authorize(api, {**params, "response_type": "id_token token", "nonce": "n"})
    auth_request_id = query_of(r.headers["location"])["authRequest"]
    url = await callback(api, auth_request_id, await session(api))
    assert query_of(url) == {}
    fragment = fragment_of(url)
    assert fragment["state"] == "s" and fragment["iss"] == issuer(api)
    assert fragment["token_type"] == "Bearer" and fragment["access_token"]
    import jwt

    claims = jwt.decode(fragment["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == "n" and claims["at_hash"]
    assert "code" not in fragment and "refresh_token" not in fragment


async def test_auth_requests_are_invisible_to_other_instances(api: Api, tmp_path: Any) -> None:
    app = await oidc_app(api)
    auth_request_id = await start(api, app)
    other = await second_instance(api, tmp_path)
    status, code, _m = await other.error(OIDC, "GetAuthRequest", {"authRequestId": auth_request_id})
    assert (status, code) == (404, "not_found")
    body = {"authRequestId": auth_request_id, "error": {"error": "ERROR_REASON_ACCESS_DENIED"}}
    status, code, _m = await other.error(OIDC, "CreateCallback", body)
    assert (status, code) == (404, "not_found")
    # Still pending in its own instance.
    await api.ok(OIDC, "GetAuthRequest", {"authRequestId": auth_request_id})


async def test_two_logins_racing_on_one_request_one_wins(api: Api) -> None:
    import anyio

    from donjon.plugins.oidc.auth_requests import fail_auth_request, finish_auth_request

    app = await oidc_app(api)
    await add_person(api)
    auth_request_id = await start(api, app)
    s = await session(api)
    results: list[str] = []

    async def finish() -> None:
        try:
            await finish_auth_request(
                api.runtime, api.instance_id, auth_request_id, s["sessionId"], s["sessionToken"]
            )
            results.append("ok")
        except Exception as exc:  # noqa: BLE001
            results.append(getattr(exc, "code", repr(exc)))

    async def fail() -> None:
        try:
            await fail_auth_request(
                api.runtime, api.instance_id, auth_request_id, "access_denied", ""
            )
            results.append("ok")
        except Exception as exc:  # noqa: BLE001
            results.append(getattr(exc, "code", repr(exc)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish)
        tg.start_soon(fail)
    assert sorted(results) == ["failed_precondition", "ok"], results


async def test_max_age_and_prompt_login_need_a_fresh_authentication(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    earlier = await session(api)
    await anyio_sleep(1.1)
    for extra in ({"max_age": "0"}, {"prompt": "login"}):
        auth_request_id = await start(api, app, **extra)
        body = {
            "authRequestId": auth_request_id,
            "session": {
                "sessionId": earlier["sessionId"],
                "sessionToken": earlier["sessionToken"],
            },
        }
        _s, code, message = await api.error(OIDC, "CreateCallback", body)
        assert code == "failed_precondition", extra
        # A login made after the request is fresh enough.
        url = await callback(api, auth_request_id, await session(api))
        assert "code" in query_of(url)
    # Without max_age or prompt the earlier session will do.
    auth_request_id = await start(api, app, max_age="3600")
    assert "code" in query_of(await callback(api, auth_request_id, earlier))


async def anyio_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


async def test_org_scopes_restrict_the_login_to_that_org(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    other_org = (await api.ok("org", "AddOrganization", {"name": "Other Org"}))["organizationId"]
    got = await error_of(
        api, code_params(app, scope="openid urn:zitadel:iam:org:domain:primary:nowhere.example")
    )
    assert got["error"] == "invalid_scope"
    domain = (
        await api.ok("org", "ListOrganizations", {"queries": [{"idQuery": {"id": other_org}}]})
    )["result"][0]["primaryDomain"]
    for scope in (
        f"urn:zitadel:iam:org:id:{other_org}",
        f"urn:zitadel:iam:org:domain:primary:{domain}",
    ):
        auth_request_id = await start(api, app, scope=f"openid {scope}")
        s = await session(api)
        body = {
            "authRequestId": auth_request_id,
            "session": {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]},
        }
        _s, code, message = await api.error(OIDC, "CreateCallback", body)
        assert code == "failed_precondition" and "organization" in message, scope
    own = (
        await api.ok("org", "ListOrganizations", {"queries": [{"idQuery": {"id": api.org_id}}]})
    )["result"][0]["primaryDomain"]
    auth_request_id = await start(
        api, app, scope=f"openid urn:zitadel:iam:org:domain:primary:{own}"
    )
    assert "code" in query_of(await callback(api, auth_request_id, await session(api)))


async def test_an_app_with_its_own_login_sends_the_browser_there(api: Api) -> None:
    app = await oidc_app(
        api, loginVersion={"loginV2": {"baseUri": "https://login.example.com/ui/v2"}}
    )
    r = await authorize(api, code_params(app))
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith("https://login.example.com/ui/v2/login?authRequest=")
    await api.ok(OIDC, "GetAuthRequest", {"authRequestId": query_of(location)["authRequest"]})
