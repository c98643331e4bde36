"""DPoP (RFC 9449): proofs checked at the token, PAR and userinfo endpoints, tokens bound
to the proof's key (`cnf.jkt`), public clients' refresh tokens bound too, `dpop_jkt`
binding codes, apps that require DPoP, and bound tokens refused as Bearer tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import pytest

from donjon.plugins.oidc.provider import provider_of
from tests.api.conftest import Api
from tests.plugins.oidc.dpop_support import DPoPKey, hs256_proof, unsigned_proof
from tests.plugins.oidc.login_support import (
    OIDC,
    REDIRECT,
    App,
    add_person,
    authorize,
    callback,
    code_for,
    oidc_app,
    pkce,
    query_of,
    session,
)
from tests.plugins.oidc.support import (
    API_SCOPE,
    TOKEN_URL,
    api_app,
    issuer,
    machine,
    project,
    second_instance,
)
from tests.plugins.oidc.test_device_code import DEVICE_GRANT, device_app
from tests.plugins.oidc.test_device_code import start as start_device

pytestmark = pytest.mark.anyio

USERINFO_URL = "/oidc/v1/userinfo"
PAR_URL = "/oauth/v2/par"
PUBLIC = {
    "applicationType": "OIDC_APP_TYPE_USER_AGENT",
    "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
}


def token_endpoint(api: Api) -> str:
    return issuer(api) + TOKEN_URL


async def dpop_token(
    api: Api,
    form: dict[str, str],
    proof: str | list[str] | None,
    *,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    proofs = [proof] if isinstance(proof, str) else proof or []
    headers = [("dpop", p) for p in proofs]
    return await api.client.post(TOKEN_URL, data=form, auth=auth, headers=headers)


async def client_credentials(
    api: Api, m: Any, proof: str | list[str] | None, scope: str = f"openid {API_SCOPE}"
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "scope": scope}
    return await dpop_token(api, form, proof, auth=m.basic())


def refused(r: httpx.Response, error: str = "invalid_dpop_proof", status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error, r.text
    return str(r.json()["error_description"])


async def userinfo(
    api: Api, scheme: str, access_token: str, proof: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"{scheme} {access_token}"}
    if proof is not None:
        headers["dpop"] = proof
    return await api.client.get(USERINFO_URL, headers=headers)


def userinfo_proof(api: Api, key: DPoPKey, access_token: str, **kw: Any) -> str:
    return key.proof("GET", issuer(api) + USERINFO_URL, access_token=access_token, **kw)


@contextmanager
def setting(api: Api, name: str, value: Any) -> Iterator[None]:
    settings = provider_of(api.runtime).settings
    saved = getattr(settings, name)
    setattr(settings, name, value)
    try:
        yield
    finally:
        setattr(settings, name, saved)


# The token endpoint binds tokens to the proof's key


async def test_a_token_request_with_a_proof_gets_a_token_bound_to_its_key(api: Api) -> None:
    m = await machine(api, "svc", token_type="jwt")
    key = DPoPKey()
    r = await client_credentials(api, m, key.proof("POST", token_endpoint(api)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.jkt}
    # Without a proof: a Bearer token, no cnf.
    r = await client_credentials(api, m, None)
    assert r.json()["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(r.json()["access_token"], options={"verify_signature": False})


async def test_every_supported_algorithm_signs_proofs(api: Api) -> None:
    m = await machine(api, "svc")
    for alg in ("ES256", "RS256", "PS256", "EdDSA"):
        key = DPoPKey(alg)
        r = await client_credentials(api, m, key.proof("POST", token_endpoint(api)))
        assert r.status_code == 200, (alg, r.text)
        assert r.json()["token_type"] == "DPoP", alg


async def test_opaque_tokens_are_bound_and_introspect_with_cnf(api: Api) -> None:
    project_id = await project(api)
    client_id, secret = await api_app(api, project_id)
    m = await machine(api, "svc")
    key = DPoPKey()
    scope = f"openid urn:zitadel:iam:org:project:id:{project_id}:aud"
    r = await client_credentials(api, m, key.proof("POST", token_endpoint(api)), scope)
    assert r.status_code == 200, r.text
    access_token = r.json()["access_token"]
    assert access_token.count(".") == 0
    r = await api.client.post(
        "/oauth/v2/introspect", data={"token": access_token}, auth=(client_id, secret)
    )
    body = r.json()
    assert body["active"] is True
    assert body["token_type"] == "DPoP" and body["cnf"] == {"jkt": key.jkt}


async def test_jwt_profile_grant_binds_too(api: Api) -> None:
    from tests.plugins.oidc.support import JWT_BEARER, assertion

    m = await machine(api, "svc", secret=False, key=True)
    key = DPoPKey()
    form = {
        "grant_type": JWT_BEARER,
        "scope": f"openid {API_SCOPE}",
        "assertion": assertion(m, aud=issuer(api)),
    }
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


# Each check of a proof


def proof_cases() -> list[tuple[Any, str, str]]:
    def now() -> int:
        return int(time.time())

    return [
        (lambda k, u: k.proof("GET", u), "htm", "wrong-htm"),
        (lambda k, u: k.proof("POST", u.replace("/token", "/introspect")), "htu", "wrong-htu"),
        (
            lambda k, u: k.proof("POST", u.replace("localhost", "evil.example")),
            "htu",
            "other-host",
        ),
        (lambda k, u: k.proof("POST", u, iat=now() - 600), "iat", "stale-iat"),
        (lambda k, u: k.proof("POST", u, iat=now() + 600), "iat", "future-iat"),
        (lambda k, u: k.proof("POST", u, drop=("jti",)), "jti", "no-jti"),
        (lambda k, u: k.proof("POST", u, drop=("htu",)), "htu", "no-htu"),
        (lambda k, u: k.proof("POST", u, drop=("iat",)), "iat", "no-iat"),
        (lambda k, u: k.proof("POST", u, header={"typ": "JWT"}), "typ", "wrong-typ"),
        (
            lambda k, u: unsigned_proof(
                {"typ": "dpop+jwt", "alg": "none", "jwk": k.public_jwk},
                {"htm": "POST", "htu": u, "iat": now(), "jti": "x"},
            ),
            "alg",
            "alg-none",
        ),
        (lambda k, u: hs256_proof(k, "POST", u), "alg", "alg-HS256"),
        (
            lambda k, u: k.proof("POST", u, header={"jwk": k.private_jwk()}),
            "private",
            "private-key-in-jwk",
        ),
        (
            lambda k, u: k.proof("POST", u, header={"jwk": DPoPKey().public_jwk}),
            "signature",
            "signed-by-another-key",
        ),
        (
            lambda k, u: k.proof("POST", u, header={"jwk": DPoPKey("RS256").public_jwk}),
            "kty",
            "jwk-of-another-type",
        ),
        (lambda k, u: k.proof("POST", u)[:-8] + "AAAAAAAA", "signature", "forged"),
        (lambda k, u: "not-a-jwt", "JWS", "garbage"),
        (lambda k, u: [k.proof("POST", u), k.proof("POST", u)], "one", "two"),
    ]


async def test_each_bad_proof_is_refused_with_invalid_dpop_proof(api: Api) -> None:
    m = await machine(api, "svc")
    for make, names, case in proof_cases():
        r = await client_credentials(api, m, make(DPoPKey(), token_endpoint(api)))
        assert r.status_code == 400, (case, r.text)
        assert r.json()["error"] == "invalid_dpop_proof", (case, r.text)
        assert names in r.json()["error_description"], (case, r.text)


async def test_htu_is_compared_without_query_and_fragment(api: Api) -> None:
    m = await machine(api, "svc")
    key = DPoPKey()
    uri = token_endpoint(api).replace("http://localhost", "HTTP://LOCALHOST") + "?a=1#frag"
    r = await client_credentials(api, m, key.proof("POST", uri))
    assert r.status_code == 200, r.text


async def test_htu_is_the_endpoint_under_the_instance_issuer(api: Api, tmp_path: Any) -> None:
    other = await second_instance(api, tmp_path)
    m = await machine(other, "svc")
    key = DPoPKey()
    # A proof made for the first instance's token endpoint does not work at the second's.
    r = await client_credentials(other, m, key.proof("POST", token_endpoint(api)))
    refused(r)
    port = api.runtime.settings.ExternalPort
    here = f"http://b.example{'' if port == 80 else f':{port}'}{TOKEN_URL}"
    r = await client_credentials(other, m, key.proof("POST", here))
    assert r.status_code == 200, r.text


async def test_a_proof_is_single_use(api: Api) -> None:
    m = await machine(api, "svc")
    proof = DPoPKey().proof("POST", token_endpoint(api))
    assert (await client_credentials(api, m, proof)).status_code == 200
    assert "used before" in refused(await client_credentials(api, m, proof))


async def test_an_app_requiring_dpop_refuses_token_requests_without_a_proof(api: Api) -> None:
    app = await oidc_app(api, dpopBoundAccessTokens=True)
    got = await api.ok("application", "GetApplication", {"applicationId": app.app_id})
    assert got["application"]["oidcConfiguration"]["dpopBoundAccessTokens"] is True
    await add_person(api)
    code, verifier = await code_for(api, app)
    form = code_form(code, verifier)
    assert "DPoP" in refused(await dpop_token(api, form, None, auth=app.basic()))
    key = DPoPKey()
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)), auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    # And the flag can be switched off again.
    await api.ok(
        "application",
        "UpdateApplication",
        {"applicationId": app.app_id, "oidcConfiguration": {"dpopBoundAccessTokens": False}},
    )
    got = await api.ok("application", "GetApplication", {"applicationId": app.app_id})
    assert got["application"]["oidcConfiguration"]["dpopBoundAccessTokens"] is False


async def test_discovery_lists_the_proof_algorithms(api: Api) -> None:
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    algs = doc["dpop_signing_alg_values_supported"]
    assert {"ES256", "RS256", "PS256", "EdDSA"} <= set(algs)
    assert not [a for a in algs if a == "none" or a.startswith("HS")]


# Resource side: userinfo, the management API


def code_form(code: str, verifier: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **extra,
    }


async def dpop_login(
    api: Api, app: App, key: DPoPKey, scope: str = "openid profile offline_access"
) -> dict[str, Any]:
    """A code flow for `app` (public: client_id in the form) whose token request has a proof."""
    code, verifier = await code_for(api, app, scope=scope)
    form = code_form(code, verifier)
    auth = app.basic() if app.secret else None
    if auth is None:
        form["client_id"] = app.client_id
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)), auth=auth)
    assert r.status_code == 200, r.text
    return r.json()


async def test_userinfo_takes_a_bound_token_with_the_dpop_scheme_and_a_proof(api: Api) -> None:
    app = await oidc_app(api)
    alice = await add_person(api)
    key = DPoPKey()
    at = (await dpop_login(api, app, key))["access_token"]
    r = await userinfo(api, "DPoP", at, userinfo_proof(api, key, at))
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == alice
    # POST works the same, with a proof for POST.
    proof = key.proof("POST", issuer(api) + USERINFO_URL, access_token=at)
    r = await api.client.post(USERINFO_URL, headers={"authorization": f"DPoP {at}", "dpop": proof})
    assert r.status_code == 200, r.text


async def test_a_bound_token_is_refused_as_bearer(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    at = (await dpop_login(api, app, DPoPKey()))["access_token"]
    r = await userinfo(api, "Bearer", at)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('DPoP error="invalid_token"')
    assert "algs=" in r.headers["www-authenticate"]
    # Form-encoded (RFC 6750 §2.2) is a bearer presentation too.
    r = await api.client.post(USERINFO_URL, data={"access_token": at})
    assert r.status_code == 401


async def test_the_management_api_takes_a_bound_token_only_with_the_dpop_scheme(
    api: Api,
) -> None:
    m = await machine(api, "svc")
    key = DPoPKey()
    bearer = (await client_credentials(api, m, None)).json()["access_token"]
    bound = (await client_credentials(api, m, key.proof("POST", token_endpoint(api)))).json()[
        "access_token"
    ]
    path = "/zitadel.user.v2.UserService/ListUsers"
    url = issuer(api) + path

    async def call(scheme: str, token_: str, proof: str | None = None) -> httpx.Response:
        headers = {"authorization": f"{scheme} {token_}"}
        if proof is not None:
            headers["dpop"] = proof
        return await api.client.post(path, json={}, headers=headers)

    assert (await call("Bearer", bearer)).status_code != 401
    r = await call("Bearer", bound)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthenticated" and "invalid_token" in r.json()["message"]
    assert r.headers["www-authenticate"].startswith('DPoP error="invalid_token"')
    # Under DPoP, with a proof of the key for this call: the caller is known (no 401).
    r = await call("DPoP", bound, key.proof("POST", url, access_token=bound))
    assert r.status_code != 401, r.text
    # Without a proof, with a wrong one, or replayed: 401 with a DPoP challenge.
    proof = key.proof("POST", url, access_token=bound)
    await call("DPoP", bound, proof)
    for bad in (
        None,
        key.proof(
            "POST", issuer(api) + "/zitadel.user.v2.UserService/GetUserByID", access_token=bound
        ),
        key.proof("POST", url, access_token=bearer),
        DPoPKey().proof("POST", url, access_token=bound),
        proof,
    ):
        r = await call("DPoP", bound, bad)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("DPoP error="), r.headers
    # Bearer tokens (an unbound access token, a personal access token) are not DPoP tokens.
    r = await call("DPoP", bearer, key.proof("POST", url, access_token=bearer))
    assert r.status_code == 401, r.text
    assert api.token is not None
    r = await call("DPoP", api.token, key.proof("POST", url, access_token=api.token))
    assert r.status_code == 401, r.text
    assert (await call("Bearer", api.token)).status_code == 200


async def test_userinfo_refuses_dpop_presentations_that_do_not_prove_the_key(
    api: Api,
) -> None:
    app = await oidc_app(api)
    await add_person(api)
    key = DPoPKey()
    at = (await dpop_login(api, app, key))["access_token"]
    url = issuer(api) + USERINFO_URL
    used = key.proof("GET", url, access_token=at)
    assert (await userinfo(api, "DPoP", at, used)).status_code == 200
    # A Bearer token (no proof at the token endpoint), presented under DPoP.
    code, verifier = await code_for(api, app)
    r = await dpop_token(api, code_form(code, verifier), None, auth=app.basic())
    unbound = r.json()["access_token"]
    cases = {
        "no-proof": (at, None, "invalid_dpop_proof"),
        "wrong-ath": (at, key.proof("GET", url, access_token=at + "x"), "invalid_dpop_proof"),
        "other-key": (at, DPoPKey().proof("GET", url, access_token=at), "invalid_token"),
        "wrong-htm": (at, key.proof("POST", url, access_token=at), "invalid_dpop_proof"),
        "wrong-htu": (
            at,
            key.proof("GET", issuer(api) + TOKEN_URL, access_token=at),
            "invalid_dpop_proof",
        ),
        "reused": (at, used, "invalid_dpop_proof"),
        "unbound-token": (unbound, key.proof("GET", url, access_token=unbound), "invalid_token"),
        "unknown-token": ("x" * 43, key.proof("GET", url, access_token="x" * 43), "invalid_token"),
    }
    for case, (token_, proof, error) in cases.items():
        r = await userinfo(api, "DPoP", token_, proof)
        assert r.status_code == 401, (case, r.text)
        assert r.json()["error"] == error, (case, r.text)
        if case != "unbound-token":
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith(f'DPoP error="{error}"'), (case, challenge)


# Refresh tokens


async def test_a_public_clients_refresh_token_is_bound_to_the_key(api: Api) -> None:
    app = await oidc_app(api, **PUBLIC)
    await add_person(api)
    key = DPoPKey()
    first = await dpop_login(api, app, key)
    assert first["token_type"] == "DPoP" and "refresh_token" in first
    form = {"grant_type": "refresh_token", "client_id": app.client_id}
    # Without a proof, or with another key: refused, and the token stays usable.
    rt = first["refresh_token"]
    refused(await dpop_token(api, {**form, "refresh_token": rt}, None))
    other = DPoPKey().proof("POST", token_endpoint(api))
    refused(await dpop_token(api, {**form, "refresh_token": rt}, other), "invalid_grant")
    r = await dpop_token(api, {**form, "refresh_token": rt}, key.proof("POST", token_endpoint(api)))
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token_type"] == "DPoP"
    # The rotated refresh token is bound to the same key.
    refused(await dpop_token(api, {**form, "refresh_token": second["refresh_token"]}, None))
    at = second["access_token"]
    assert (await userinfo(api, "DPoP", at, userinfo_proof(api, key, at))).status_code == 200


async def test_a_confidential_clients_refresh_token_is_bound_to_the_client_not_the_key(
    api: Api,
) -> None:
    app = await oidc_app(api)
    await add_person(api)
    first = await dpop_login(api, app, DPoPKey())
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    r = await dpop_token(api, form, None, auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"


# dpop_jkt (§10): the authorization code is bound to a key


async def test_dpop_jkt_binds_the_code_to_the_key(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    key = DPoPKey()
    code, verifier = await code_for(api, app, dpop_jkt=key.jkt)
    form = code_form(code, verifier)
    refused(await dpop_token(api, form, None, auth=app.basic()))
    other = DPoPKey().proof("POST", token_endpoint(api))
    refused(await dpop_token(api, form, other, auth=app.basic()), "invalid_grant")
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)), auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


async def test_a_malformed_dpop_jkt_is_refused_at_authorize(api: Api) -> None:
    app = await oidc_app(api)
    _verifier, challenge = pkce()
    params = {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "dpop_jkt": "not a thumbprint",
    }
    r = await authorize(api, params)
    assert r.status_code == 302
    assert query_of(r.headers["location"])["error"] == "invalid_request"


async def par_request(
    api: Api, app: App, proof: str | None, **extra: str
) -> tuple[httpx.Response, str]:
    verifier, challenge = pkce()
    form = {
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    headers = {"dpop": proof} if proof else {}
    r = await api.client.post(PAR_URL, data=form, auth=app.basic(), headers=headers)
    return r, verifier


async def test_a_proof_at_par_binds_the_code(api: Api) -> None:
    app = await oidc_app(api)
    await add_person(api)
    key = DPoPKey()
    par_url = issuer(api) + PAR_URL
    # A dpop_jkt that disagrees with the proof's key is refused.
    r, _ = await par_request(api, app, key.proof("POST", par_url), dpop_jkt=DPoPKey().jkt)
    refused(r)
    # A bad proof is refused like at the token endpoint.
    refused((await par_request(api, app, key.proof("GET", par_url)))[0])
    r, verifier = await par_request(api, app, key.proof("POST", par_url))
    assert r.status_code == 201, r.text
    request_uri = r.json()["request_uri"]
    located = await authorize(api, {"client_id": app.client_id, "request_uri": request_uri})
    auth_request_id = query_of(located.headers["location"])["authRequest"]
    code = query_of(await callback(api, auth_request_id, await session(api)))["code"]
    form = code_form(code, verifier)
    refused(await dpop_token(api, form, None, auth=app.basic()))
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)), auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


# Server nonces (§8, §9)


async def test_with_required_nonces_a_proof_must_carry_the_servers_nonce(
    api: Api, tmp_path: Any
) -> None:
    m = await machine(api, "svc")
    key = DPoPKey()
    with setting(api, "RequireDPoPNonce", True):
        r = await client_credentials(api, m, key.proof("POST", token_endpoint(api)))
        refused(r, "use_dpop_nonce")
        nonce = r.headers["dpop-nonce"]
        r = await client_credentials(api, m, key.proof("POST", token_endpoint(api), nonce="x"))
        refused(r, "use_dpop_nonce")
        r = await client_credentials(api, m, key.proof("POST", token_endpoint(api), nonce=nonce))
        assert r.status_code == 200, r.text
        # Every answer to a proof carries the current nonce (the same one, unless its
        # 5-minute period just ended).
        nonce = r.headers["dpop-nonce"]
        # Userinfo answers a missing nonce with a DPoP challenge and the nonce.
        app = await oidc_app(api)
        await add_person(api)
        code, verifier = await code_for(api, app)
        proof = key.proof("POST", token_endpoint(api), nonce=nonce)
        r = await dpop_token(api, code_form(code, verifier), proof, auth=app.basic())
        at = r.json()["access_token"]
        r = await userinfo(api, "DPoP", at, userinfo_proof(api, key, at))
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce"')
        nonce = r.headers["dpop-nonce"]
        r = await userinfo(api, "DPoP", at, userinfo_proof(api, key, at, nonce=nonce))
        assert r.status_code == 200, r.text
        # A nonce is for its instance only.
        other = await second_instance(api, tmp_path)
        robot = await machine(other, "svc")
        port = api.runtime.settings.ExternalPort
        there = f"http://b.example{'' if port == 80 else f':{port}'}{TOKEN_URL}"
        r = await client_credentials(other, robot, key.proof("POST", there, nonce=nonce))
        refused(r, "use_dpop_nonce")
        assert r.headers["dpop-nonce"] != nonce


# Token exchange (RFC 8693): a bound token is exchanged only with its key


async def test_a_bound_subject_token_is_exchanged_only_with_a_proof_of_its_key(api: Api) -> None:
    grants = [
        "OIDC_GRANT_TYPE_AUTHORIZATION_CODE",
        "OIDC_GRANT_TYPE_REFRESH_TOKEN",
        "OIDC_GRANT_TYPE_TOKEN_EXCHANGE",
    ]
    app = await oidc_app(api, grantTypes=grants)
    await add_person(api)
    key = DPoPKey()
    at = (await dpop_login(api, app, key, scope="openid profile"))["access_token"]
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": at,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    # Stolen without the key, it cannot be traded for an unbound token.
    refused(await dpop_token(api, form, None, auth=app.basic()))
    other = DPoPKey().proof("POST", token_endpoint(api))
    refused(await dpop_token(api, form, other, auth=app.basic()), "invalid_grant")
    proof = key.proof("POST", token_endpoint(api))
    r = await dpop_token(api, form, proof, auth=app.basic())
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


# Device authorization (RFC 8628): the polling request's proof binds the tokens


async def test_the_device_flow_binds_its_tokens_to_the_polling_key(api: Api) -> None:
    app = await device_app(api)
    await add_person(api)
    started = await start_device(api, app)
    typed = started["user_code"]
    got = (await api.ok(OIDC, "GetDeviceAuthorizationRequest", {"userCode": typed}))[
        "deviceAuthorizationRequest"
    ]
    s = await session(api)
    await api.ok(
        OIDC,
        "AuthorizeOrDenyDeviceAuthorization",
        {
            "deviceAuthorizationId": got["id"],
            "session": {"sessionId": s["sessionId"], "sessionToken": s["sessionToken"]},
        },
    )
    key = DPoPKey()
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": started["device_code"],
        "client_id": app.client_id,
    }
    r = await dpop_token(api, form, key.proof("POST", token_endpoint(api)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    at = body["access_token"]
    assert (await userinfo(api, "DPoP", at, userinfo_proof(api, key, at))).status_code == 200
    # A public client: the refresh token is bound to the key as well.
    refresh = {"grant_type": "refresh_token", "client_id": app.client_id}
    refused(await dpop_token(api, {**refresh, "refresh_token": body["refresh_token"]}, None))
