"""Token exchange (RFC 8693): exchanging a user's tokens for narrower ones, and
impersonation (an actor gets tokens for a user, named in `act`) only when the
instance's security settings allow it and the actor holds an impersonator role."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from donjon.core.eventstore.query import EventQuery
from tests.api.conftest import Api
from tests.api.tokens import machine_with_token
from tests.plugins.oidc.login_support import REDIRECT, App, add_person, code_for, oidc_app
from tests.plugins.oidc.support import (
    CLIENT_ASSERTION_TYPE,
    Machine,
    assertion,
    client_credentials,
    issuer,
    jwt_profile,
    machine,
    second_instance,
    token,
)

pytestmark = pytest.mark.anyio

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ID = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
USER_ID = "urn:zitadel:params:oauth:token-type:user_id"
GRANTS = [
    "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
    "OIDC_GRANT_TYPE_REFRESH_TOKEN",
    "OIDC_GRANT_TYPE_TOKEN_EXCHANGE",
]


async def exchanger(api: Api, **config: Any) -> App:
    """A web app (basic auth) that may use token exchange; ID tokens carry user claims."""
    return await oidc_app(api, grantTypes=GRANTS, idTokenUserinfoAssertion=True, **config)


async def logged_in(api: Api, app: App, scope: str = "openid profile email") -> dict[str, Any]:
    """Alice's tokens at `app` after a login (code flow with PKCE)."""
    code, verifier = await code_for(api, app, scope=scope)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = await token(api, form, auth=app.basic())
    assert r.status_code == 200, r.text
    return r.json()


async def exchange(api: Api, app: App, **form: str) -> Any:
    return await token(api, {"grant_type": EXCHANGE, **form}, auth=app.basic())


def refused(r: Any, error: str, mentions: str = "") -> None:
    assert r.status_code >= 400 and r.status_code < 500, r.text
    body = r.json()
    assert body["error"] == error, body
    assert mentions in body["error_description"], body


def claims_of(token_: str) -> dict[str, Any]:
    return jwt.decode(token_, options={"verify_signature": False})


async def introspect(api: Api, app: App, token_: str) -> dict[str, Any]:
    r = await api.client.post("/oauth/v2/introspect", data={"token": token_}, auth=app.basic())
    assert r.status_code == 200, r.text
    return r.json()


async def enable_impersonation(api: Api, enabled: bool = True) -> None:
    await api.ok("settings", "SetSecuritySettings", {"enableImpersonation": enabled})


async def impersonator(
    api: Api,
    app: App,
    name: str,
    *,
    org_roles: list[str] | None = None,
    instance_roles: list[str] | None = None,
    org_id: str | None = None,
) -> tuple[Machine, str]:
    """A machine user with the roles, and its access token for `app`'s project."""
    bot = await machine(api, name, org_id=org_id)
    if org_roles:
        await api.ok(
            "permission",
            "CreateAdministrator",
            {
                "userId": bot.user_id,
                "resource": {"organizationId": org_id or api.org_id},
                "roles": org_roles,
            },
        )
    if instance_roles:
        await api.ok(
            "permission",
            "CreateAdministrator",
            {"userId": bot.user_id, "resource": {"instance": True}, "roles": instance_roles},
        )
    scope = f"openid profile urn:zitadel:iam:org:project:id:{app.project_id}:aud"
    return bot, (await client_credentials(api, bot, scope))["access_token"]


def as_user(user_id: str, actor_token: str) -> dict[str, str]:
    return {
        "subject_token": user_id,
        "subject_token_type": USER_ID,
        "actor_token": actor_token,
        "actor_token_type": ACCESS,
    }


# -- discovery and clients -----------------------------------------------------------------


async def test_discovery_lists_the_token_exchange_grant(api: Api) -> None:
    config = (await api.client.get("/.well-known/openid-configuration")).json()
    assert EXCHANGE in config["grant_types_supported"]


async def test_only_apps_with_the_grant_may_exchange(api: Api) -> None:
    plain = await oidc_app(api)
    await add_person(api)
    tokens = await logged_in(api, plain)
    r = await exchange(api, plain, subject_token=tokens["access_token"], subject_token_type=ACCESS)
    refused(r, "unauthorized_client", "token_exchange")
    bot = await machine(api, "exchanging-bot")
    r = await token(
        api,
        {"grant_type": EXCHANGE, "subject_token": "x", "subject_token_type": ACCESS},
        auth=bot.basic(),
    )
    refused(r, "unauthorized_client")


# -- exchange without an actor -------------------------------------------------------------


async def test_an_access_token_is_exchanged_for_a_narrower_one(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    tokens = await logged_in(api, app)
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        scope="openid email",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    assert body["scope"] == "openid email" and body["expires_in"] > 0
    assert body["access_token"].count(".") == 0  # opaque unless a JWT is asked for
    assert "refresh_token" not in body
    id_token = claims_of(body["id_token"])
    assert id_token["sub"] == alice and id_token["email"] == "alice@example.com"
    assert "act" not in id_token and "name" not in id_token
    seen = await introspect(api, app, body["access_token"])
    assert seen["active"] and seen["sub"] == alice and seen["scope"] == "openid email"
    assert "act" not in seen and app.client_id in seen["aud"]
    r = await api.client.get(
        "/oidc/v1/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"


async def test_a_jwt_access_token_can_be_asked_for(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    tokens = await logged_in(api, app)
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        requested_token_type=JWT,
        scope="profile",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == JWT and "id_token" not in body
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == alice and claims["scope"] == "profile"
    assert claims["iss"] == issuer(api) and app.client_id in claims["aud"]
    assert (await introspect(api, app, body["access_token"]))["active"]


async def test_an_id_token_is_exchanged_for_an_id_token(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    tokens = await logged_in(api, app)
    r = await exchange(
        api, app, subject_token=tokens["id_token"], subject_token_type=ID, requested_token_type=ID
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ID and body["token_type"] == "N_A"
    claims = claims_of(body["access_token"])
    original = claims_of(tokens["id_token"])
    assert claims["sub"] == alice and claims["aud"] == original["aud"]
    assert claims["auth_time"] == original["auth_time"] and claims["amr"] == original["amr"]
    # An ID token carries no scopes: the exchange cannot add any.
    r = await exchange(
        api, app, subject_token=tokens["id_token"], subject_token_type=ID, scope="email"
    )
    refused(r, "invalid_scope", "email")


async def test_scopes_may_narrow_but_never_widen(api: Api) -> None:
    app = await exchanger(api)
    await add_person(api)
    tokens = await logged_in(api, app, scope="openid profile")
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        scope="openid email",
    )
    refused(r, "invalid_scope", "email")
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        scope="openid urn:zitadel:iam:org:project:id:zitadel:aud",
    )
    refused(r, "invalid_scope", "zitadel:aud")
    # None asked: the subject's.
    r = await exchange(api, app, subject_token=tokens["access_token"], subject_token_type=ACCESS)
    assert r.status_code == 200 and r.json()["scope"] == "openid profile"


async def test_the_audience_may_narrow_but_never_widen(api: Api) -> None:
    app = await exchanger(api)
    await add_person(api)
    tokens = await logged_in(api, app)
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        audience="https://api.elsewhere.example",
    )
    refused(r, "invalid_target", "api.elsewhere.example")
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        audience=app.project_id,
        requested_token_type=JWT,
    )
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["aud"] == [app.project_id]
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        resource="https://api.example",
    )
    refused(r, "invalid_target", "resource")


# -- refused subject tokens ------------------------------------------------------------------


async def test_bad_requests_are_invalid_request(api: Api) -> None:
    app = await exchanger(api)
    await add_person(api)
    tokens = await logged_in(api, app)
    access, id_token = tokens["access_token"], tokens["id_token"]
    cases: list[tuple[dict[str, str], str]] = [
        ({"subject_token_type": ACCESS}, "subject_token: required"),
        ({"subject_token": access}, "subject_token_type: required"),
        ({"subject_token": access, "subject_token_type": "urn:x"}, "unknown token type"),
        ({"subject_token": access, "subject_token_type": REFRESH}, "not accepted"),
        # Wrong type hints: each token is checked as the type it is said to be.
        ({"subject_token": access, "subject_token_type": ID}, "subject_token: invalid"),
        ({"subject_token": id_token, "subject_token_type": ACCESS}, "subject_token: invalid"),
        ({"subject_token": "not-a-token", "subject_token_type": ACCESS}, "subject_token: invalid"),
        ({"subject_token": access, "subject_token_type": USER_ID}, "needs an actor_token"),
        (
            {
                "subject_token": access,
                "subject_token_type": ACCESS,
                "requested_token_type": REFRESH,
            },
            "requested_token_type",
        ),
        (
            {"subject_token": access, "subject_token_type": ACCESS, "actor_token": access},
            "actor_token_type: required",
        ),
    ]
    for form, mentions in cases:
        refused(await exchange(api, app, **form), "invalid_request", mentions)


async def test_revoked_and_expired_subject_tokens_are_refused(api: Api) -> None:
    from datetime import timedelta

    from donjon.plugins.oidc.provider import provider_of

    app = await exchanger(api)
    await add_person(api)
    tokens = await logged_in(api, app)
    r = await api.client.post(
        "/oauth/v2/revoke", data={"token": tokens["access_token"]}, auth=app.basic()
    )
    assert r.status_code == 200
    r = await exchange(api, app, subject_token=tokens["access_token"], subject_token_type=ACCESS)
    refused(r, "invalid_request", "subject_token: invalid, expired or revoked")
    settings = provider_of(api.runtime).settings
    saved = settings.AccessTokenLifetime, settings.IdTokenLifetime
    try:
        settings.AccessTokenLifetime = settings.IdTokenLifetime = timedelta(seconds=-5)
        expired = await logged_in(api, app)
    finally:
        settings.AccessTokenLifetime, settings.IdTokenLifetime = saved
    for subject, kind in ((expired["access_token"], ACCESS), (expired["id_token"], ID)):
        r = await exchange(api, app, subject_token=subject, subject_token_type=kind)
        refused(r, "invalid_request", "subject_token: invalid")


async def test_tokens_issued_to_another_client_are_refused(api: Api) -> None:
    app, other = await exchanger(api), await exchanger(api)
    await add_person(api)
    tokens = await logged_in(api, app)
    for subject, kind in ((tokens["access_token"], ACCESS), (tokens["id_token"], ID)):
        r = await exchange(api, other, subject_token=subject, subject_token_type=kind)
        refused(r, "invalid_request", "subject_token: invalid")


async def test_tokens_of_another_instance_are_refused(api: Api, tmp_path: Path) -> None:
    app = await exchanger(api)
    other = await second_instance(api, tmp_path)
    async with other.client:
        bot_b = await machine(other, "b-bot", secret=False, key=True)
        aud = issuer(other).replace("localhost", "b.example")
        r = await jwt_profile(other, bot_b, scope="openid profile", aud=aud)
        assert r.status_code == 200, r.text
        foreign = r.json()
    await enable_impersonation(api)
    alice = await add_person(api)
    _, actor_token = await impersonator(
        api, app, "imp", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    for subject, kind in ((foreign["access_token"], ACCESS), (foreign["id_token"], ID)):
        r = await exchange(api, app, subject_token=subject, subject_token_type=kind)
        refused(r, "invalid_request", "subject_token: invalid")
        r = await exchange(
            api,
            app,
            **{**as_user(alice, actor_token), "actor_token": subject, "actor_token_type": kind},
        )
        refused(r, "invalid_request", "actor_token: invalid")


# -- impersonation ---------------------------------------------------------------------------


async def test_impersonation_needs_the_security_setting(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    _, actor_token = await impersonator(
        api, app, "support", org_roles=["ORG_END_USER_IMPERSONATOR"]
    )
    r = await exchange(api, app, **as_user(alice, actor_token))
    refused(r, "invalid_request", "enableImpersonation")
    await enable_impersonation(api)
    assert (await exchange(api, app, **as_user(alice, actor_token))).status_code == 200
    await enable_impersonation(api, False)
    refused(await exchange(api, app, **as_user(alice, actor_token)), "invalid_request", "disabled")


async def test_impersonation_by_user_id_names_the_actor_and_is_audited(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    bot, actor_token = await impersonator(
        api, app, "support", org_roles=["ORG_END_USER_IMPERSONATOR"]
    )
    r = await exchange(api, app, **as_user(alice, actor_token), scope="openid profile email")
    assert r.status_code == 200, r.text
    body = r.json()
    act = {"iss": issuer(api), "sub": bot.user_id}
    id_token = claims_of(body["id_token"])
    assert id_token["sub"] == alice and id_token["act"] == act
    assert id_token["email"] == "alice@example.com"
    seen = await introspect(api, app, body["access_token"])
    assert seen["active"] and seen["sub"] == alice and seen["act"] == act
    # The actor's own audience and a JWT access token carry it too.
    r = await exchange(api, app, **as_user(alice, actor_token), requested_token_type=JWT)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == alice and claims["act"] == act
    # No scope asked: the actor token's.
    project_scope = f"urn:zitadel:iam:org:project:id:{app.project_id}:aud"
    assert r.json()["scope"] == f"openid profile {project_scope}"
    events = await api.runtime.store.query(
        EventQuery(
            instance_ids=(api.instance_id,),
            aggregate_ids=(alice,),
            event_types=("user.impersonated",),
        )
    )
    assert len(events) == 2
    assert events[0].payload == {"client_id": app.client_id, "actor": act}
    assert events[0].creator == bot.user_id


async def test_an_actor_may_not_widen_the_authorization_scopes(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    _, actor_token = await impersonator(
        api, app, "support", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    r = await exchange(
        api,
        app,
        **as_user(alice, actor_token),
        scope="openid urn:zitadel:iam:org:project:id:zitadel:aud",
    )
    refused(r, "invalid_scope", "zitadel:aud")


async def test_impersonation_needs_an_impersonator_role_on_the_users_org(api: Api) -> None:
    app = await exchanger(api)
    await enable_impersonation(api)
    elsewhere = (await api.ok("org", "AddOrganization", {"name": "Elsewhere"}))["organizationId"]
    bob = await add_person(api, "bob", org_id=elsewhere)
    alice = await add_person(api)
    _, owner_token = await impersonator(api, app, "owner", instance_roles=["IAM_OWNER"])
    _, org_owner_token = await impersonator(api, app, "org-owner", org_roles=["ORG_OWNER"])
    _, local_token = await impersonator(api, app, "local", org_roles=["ORG_END_USER_IMPERSONATOR"])
    _, global_token = await impersonator(
        api, app, "global", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    # Owning is not impersonating.
    for actor_token in (owner_token, org_owner_token):
        refused(
            await exchange(api, app, **as_user(alice, actor_token)),
            "invalid_request",
            "END_USER_IMPERSONATOR",
        )
    # An org role reaches that org's users only; an instance role everyone's.
    assert (await exchange(api, app, **as_user(alice, local_token))).status_code == 200
    refused(await exchange(api, app, **as_user(bob, local_token)), "invalid_request", "may not")
    assert (await exchange(api, app, **as_user(bob, global_token))).status_code == 200


async def test_impersonating_an_administrator_needs_an_admin_impersonator(api: Api) -> None:
    app = await exchanger(api)
    await enable_impersonation(api)
    _, end_user_token = await impersonator(
        api, app, "end-users", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    _, admin_token = await impersonator(
        api, app, "admins", instance_roles=["IAM_ADMIN_IMPERSONATOR"]
    )
    refused(
        await exchange(api, app, **as_user(api.admin_id, end_user_token)),
        "invalid_request",
        "ADMIN_IMPERSONATOR",
    )
    r = await exchange(api, app, **as_user(api.admin_id, admin_token))
    assert r.status_code == 200, r.text


async def test_delegation_with_an_access_token_subject_and_a_chain_of_actors(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    tokens = await logged_in(api, app)
    bot, actor_token = await impersonator(
        api, app, "support", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    r = await exchange(
        api,
        app,
        subject_token=tokens["access_token"],
        subject_token_type=ACCESS,
        actor_token=actor_token,
        actor_token_type=ACCESS,
        scope="openid email",
    )
    assert r.status_code == 200, r.text
    first = r.json()
    act = {"iss": issuer(api), "sub": bot.user_id}
    assert (await introspect(api, app, first["access_token"]))["act"] == act
    # Exchanging the impersonated token again keeps its actor.
    r = await exchange(api, app, subject_token=first["access_token"], subject_token_type=ACCESS)
    assert r.status_code == 200, r.text
    again = await introspect(api, app, r.json()["access_token"])
    assert again["sub"] == alice and again["act"] == act


async def app_key_signer(api: Api, app: App) -> Machine:
    """The app's new application key, as a signer whose `iss` is the client id."""
    created = await api.ok("application", "CreateApplicationKey", {"applicationId": app.app_id})
    data = json.loads(base64.b64decode(created["keyDetails"]))
    return Machine(app.client_id, "", key_id=data["keyId"], private_key=data["key"])


async def test_a_jwt_subject_signed_by_the_client_names_the_user(api: Api) -> None:
    keyed_app = {"authMethodType": "OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"}
    app, other = await exchanger(api, **keyed_app), await exchanger(api, **keyed_app)
    alice = await add_person(api)
    await enable_impersonation(api)
    bot, actor_token = await impersonator(
        api, app, "support", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    key = await app_key_signer(api, app)
    form = {
        "grant_type": EXCHANGE,
        "subject_token_type": JWT,
        "actor_token": actor_token,
        "actor_token_type": ACCESS,
        "requested_token_type": JWT,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
    }

    async def exchange_signed(subject_token: str) -> Any:
        client_assertion = assertion(key, aud=f"{issuer(api)}/oauth/v2/token")
        return await token(
            api, {**form, "subject_token": subject_token, "client_assertion": client_assertion}
        )

    r = await exchange_signed(assertion(key, aud=issuer(api), sub=alice))
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == alice and claims["act"]["sub"] == bot.user_id
    # Another application's key does not speak for this client.
    foreign = assertion(await app_key_signer(api, other), aud=issuer(api), sub=alice)
    refused(await exchange_signed(foreign), "invalid_request", "subject_token: invalid")


async def test_a_jwt_subject_signed_by_a_machine_user_must_be_the_actors(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    bot, actor_token = await impersonator(
        api, app, "signer", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    keyed = await machine(api, "keyed", secret=False, key=True)
    # The actor's key: a key of the actor machine user.
    added = await api.ok("user", "AddKey", {"userId": bot.user_id})
    content = json.loads(base64.b64decode(added["keyContent"]))
    bot.key_id, bot.private_key = content["keyId"], content["key"]

    def asserting(signer: Machine, **claims: Any) -> str:
        return assertion(signer, aud=issuer(api), sub=alice, **claims)

    form = {"subject_token_type": JWT, "actor_token": actor_token, "actor_token_type": ACCESS}
    r = await exchange(api, app, subject_token=asserting(bot), **form)
    assert r.status_code == 200, r.text
    assert (await introspect(api, app, r.json()["access_token"]))["act"]["sub"] == bot.user_id
    # Someone else's key, a stale assertion, one used twice: refused.
    refused(
        await exchange(api, app, subject_token=asserting(keyed), **form),
        "invalid_request",
        "signed by the client or by the actor",
    )
    stale = assertion(bot, aud=issuer(api), sub=alice, lifetime=-60)
    refused(await exchange(api, app, subject_token=stale, **form), "invalid_request", "expired")
    once = asserting(bot, jti=uuid.uuid4().hex)
    assert (await exchange(api, app, subject_token=once, **form)).status_code == 200
    refused(await exchange(api, app, subject_token=once, **form), "invalid_request", "used before")
    refused(
        await exchange(api, app, subject_token="not.a.jwt", **form),
        "invalid_request",
        "subject_token: the assertion is not a well-formed signed JWT",
    )
    # A JWT subject needs an actor.
    refused(
        await exchange(api, app, subject_token=asserting(bot), subject_token_type=JWT),
        "invalid_request",
        "needs an actor_token",
    )


# -- refresh tokens and chains ---------------------------------------------------------------


async def test_offline_access_brings_a_refresh_token_that_keeps_the_actor(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    tokens = await logged_in(api, app, scope="openid profile offline_access")
    bot, actor_token = await impersonator(
        api, app, "support", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    delegated = {
        "subject_token": tokens["access_token"],
        "subject_token_type": ACCESS,
        "actor_token": actor_token,
        "actor_token_type": ACCESS,
        "audience": app.client_id,
    }
    r = await exchange(api, app, **delegated, scope="openid offline_access")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "openid offline_access" and body["refresh_token"]
    act = {"iss": issuer(api), "sub": bot.user_id}
    held = await introspect(api, app, body["refresh_token"])
    assert held["token_type"] == "refresh_token" and held["act"] == act
    r = await token(
        api,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        auth=app.basic(),
    )
    assert r.status_code == 200, r.text
    refreshed = r.json()
    seen = await introspect(api, app, refreshed["access_token"])
    assert seen["sub"] == alice and seen["act"] == act and seen["aud"] == [app.client_id]
    assert claims_of(refreshed["id_token"])["act"] == act
    # Without offline_access asked for, no refresh token; the actor's token has none to give.
    r = await exchange(api, app, **delegated, scope="openid")
    assert r.status_code == 200 and "refresh_token" not in r.json()
    r = await exchange(api, app, **as_user(alice, actor_token), scope="openid offline_access")
    refused(r, "invalid_scope", "offline_access")


async def test_an_impersonated_actor_is_nested_in_act(api: Api) -> None:
    app = await exchanger(api)
    await enable_impersonation(api)
    alice = await add_person(api)
    carol = await add_person(api, "carol")
    await api.ok(
        "permission",
        "CreateAdministrator",
        {"userId": alice, "resource": {"instance": True}, "roles": ["IAM_END_USER_IMPERSONATOR"]},
    )
    # Alice administers something now: impersonating her needs an admin impersonator.
    bot, actor_token = await impersonator(
        api, app, "supervisor", instance_roles=["IAM_ADMIN_IMPERSONATOR"]
    )
    r = await exchange(api, app, **as_user(alice, actor_token))
    assert r.status_code == 200, r.text
    as_alice = r.json()["access_token"]
    r = await exchange(api, app, **as_user(carol, as_alice), requested_token_type=JWT)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == carol
    assert claims["act"] == {
        "iss": issuer(api),
        "sub": alice,
        "act": {"iss": issuer(api), "sub": bot.user_id},
    }
    # The impersonated users' records still take commands.
    await api.ok("user", "DeactivateUser", {"userId": carol})
    refused(await exchange(api, app, **as_user(carol, as_alice)), "invalid_request", "invalid")


async def test_a_personal_access_token_may_act_but_not_be_the_subject(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    robot_id, robot = await machine_with_token(
        api, "pat-robot", instance_roles=["IAM_END_USER_IMPERSONATOR"]
    )
    pat = robot.token
    assert pat is not None
    r = await exchange(api, app, **as_user(alice, pat), scope="openid profile")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "openid profile"
    seen = await introspect(api, app, body["access_token"])
    assert seen["sub"] == alice and seen["act"] == {"iss": issuer(api), "sub": robot_id}
    # The client's own audience, as after a login (neither token had one).
    assert app.client_id in seen["aud"] and app.project_id in seen["aud"]
    r = await exchange(api, app, subject_token=pat, subject_token_type=ACCESS)
    refused(r, "invalid_request", "subject_token: invalid")


async def test_an_id_token_may_act(api: Api) -> None:
    app = await exchanger(api)
    alice = await add_person(api)
    await enable_impersonation(api)
    bot = await machine(api, "id-actor", secret=False, key=True)
    await api.ok(
        "permission",
        "CreateAdministrator",
        {
            "userId": bot.user_id,
            "resource": {"instance": True},
            "roles": ["IAM_END_USER_IMPERSONATOR"],
        },
    )
    scope = f"openid urn:zitadel:iam:org:project:id:{app.project_id}:aud"
    r = await jwt_profile(api, bot, scope=scope)
    assert r.status_code == 200, r.text
    actor_id_token = r.json()["id_token"]
    form = {**as_user(alice, actor_id_token), "actor_token_type": ID}
    r = await exchange(api, app, **form, scope="openid email")
    assert r.status_code == 200, r.text
    id_token = claims_of(r.json()["id_token"])
    assert id_token["sub"] == alice and id_token["act"]["sub"] == bot.user_id
    assert id_token["auth_time"] == claims_of(actor_id_token)["auth_time"]
    # An ID token issued to another client does not act here.
    other = await exchanger(api)
    refused(await exchange(api, other, **form), "invalid_request", "actor_token: invalid")
