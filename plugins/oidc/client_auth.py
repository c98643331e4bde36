"""Client authentication at the token, introspection and revocation endpoints.

Which method a request uses is read from what it sends (RFC 6749 §2.3,
OIDC Core §9); sending two is refused:

| sent                                              | method                |
|---------------------------------------------------|-----------------------|
| `Authorization: Basic id:secret`                  | `client_secret_basic` |
| `client_id` + `client_secret` in the form          | `client_secret_post`  |
| `client_assertion_type` + `client_assertion`       | `private_key_jwt`     |
| `client_id` alone                                 | `none` (public)       |

An application must use the method it was registered with (`basic`,
`post`, `none`, `private_key_jwt` with one of its application keys); a
machine user may use its client secret either way, or `private_key_jwt`
with one of its keys. A client assertion names its client in `iss` (an
app's client id, or a machine user's id or name) and its key in `kid`; one
set of checks (`assertion.verify_assertion`, then the single use of `jti`)
applies to both. A wrong secret, an
unknown client or an inactive app, project or user is `invalid_client`
(401), saying no more than that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request

from donjon.core.identity import apps, secrets
from donjon.plugins.oidc import replay
from donjon.plugins.oidc.assertion import (
    AssertionRules,
    load_public_pem,
    unverified_parts,
    verify_assertion,
)
from donjon.plugins.oidc.clients import (
    APP_AUTH_METHODS,
    Client,
    app_client,
    app_is_usable,
    find_app,
    find_machine,
    machine_client,
    machine_is_usable,
    usable_app_key,
    usable_machine_key,
)
from donjon.plugins.oidc.errors import InvalidClient, InvalidRequest
from donjon.plugins.oidc.forms import BASIC_CHALLENGE, basic_credentials

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider

CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_SECRET_POST = "client_secret_post"
PRIVATE_KEY_JWT = "private_key_jwt"
NONE = "none"
ALL_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT, NONE)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

FAILED = "client authentication failed"


def presented_method(request: Request[Any, Any, Any], form: dict[str, str]) -> str | None:
    """The method the request uses, None when it names no client; InvalidRequest for two."""
    used = []
    if request.headers.get("authorization", "").lower().startswith("basic "):
        used.append(CLIENT_SECRET_BASIC)
    if "client_assertion" in form or "client_assertion_type" in form:
        used.append(PRIVATE_KEY_JWT)
    if "client_secret" in form:
        used.append(CLIENT_SECRET_POST)
    if len(used) > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if used:
        return used[0]
    return NONE if "client_id" in form else None


async def authenticate_client(
    provider: Provider,
    issuer: Issuer,
    request: Request[Any, Any, Any],
    form: dict[str, str],
    *,
    endpoint: str,
    unknown_is_anonymous: bool = False,
    conn: AsyncConnection | None = None,
) -> Client | None:
    """The client the request authenticates as; None when it names none.

    `endpoint` is the URL being called (a client assertion may name it as
    its audience). With `unknown_is_anonymous` (grants that need no client),
    a client id and secret naming no client at all count as no client:
    ZITADEL's SDK sends `Basic None:None` with its JWT profile requests.
    (with `client_id=None` in the form). A known client with a wrong secret
    is still refused. `conn`: a read transaction of the caller's to look the
    client up in. Raises InvalidClient or InvalidRequest.
    """
    method = presented_method(request, form)
    if method is None:
        return None
    if method == CLIENT_SECRET_BASIC:
        client_id, secret = basic_credentials(request)  # type: ignore[misc]
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id differs from the HTTP Basic user")
        return await _by_secret(
            provider, issuer, client_id, secret, method, unknown_is_anonymous, conn
        )
    if method == CLIENT_SECRET_POST:
        if "client_id" not in form:
            raise InvalidRequest("client_id: required with client_secret")
        return await _by_secret(
            provider,
            issuer,
            form["client_id"],
            form["client_secret"],
            method,
            unknown_is_anonymous,
            conn,
        )
    if method == PRIVATE_KEY_JWT:
        return await _by_assertion(provider, issuer, form, endpoint, conn)
    return await _public(provider, issuer, form["client_id"], unknown_is_anonymous, conn)


async def _by_secret(
    provider: Provider,
    issuer: Issuer,
    client_id: str,
    secret: str,
    method: str,
    unknown_is_anonymous: bool,
    conn: AsyncConnection | None,
) -> Client | None:
    challenge = BASIC_CHALLENGE if method == CLIENT_SECRET_BASIC else None
    async with provider.read(conn) as c:
        app = await find_app(c, issuer.instance_id, client_id)
        user = None if app else await find_machine(c, issuer.instance_id, client_id)
    if app is None and user is None and unknown_is_anonymous:
        return None
    if app is not None:
        if (
            not app_is_usable(app)
            or APP_AUTH_METHODS.get(app["auth_method_type"]) != method
            or not apps.check_client_secret(app, secret)
        ):
            raise InvalidClient(FAILED, headers=challenge)
        return app_client(app, method)
    if (
        user is None
        or not machine_is_usable(user)
        or not user["secret_digest"]
        or not secrets.matches(secret, user["secret_digest"])
    ):
        raise InvalidClient(FAILED, headers=challenge)
    return machine_client(user, client_id, method)


async def _public(
    provider: Provider,
    issuer: Issuer,
    client_id: str,
    unknown_is_anonymous: bool,
    conn: AsyncConnection | None,
) -> Client | None:
    async with provider.read(conn) as c:
        app = await find_app(c, issuer.instance_id, client_id)
    if app is None and unknown_is_anonymous:
        return None
    if app is None or not app_is_usable(app) or app["auth_method_type"] != "none":
        raise InvalidClient(FAILED)
    return app_client(app, NONE)


async def _by_assertion(
    provider: Provider,
    issuer: Issuer,
    form: dict[str, str],
    endpoint: str,
    conn: AsyncConnection | None,
) -> Client:
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}")
    token = form.get("client_assertion", "")
    header, claims = unverified_parts(token, InvalidClient)
    client_id = claims.get("iss")
    if not isinstance(client_id, str) or not client_id:
        raise InvalidClient("the client assertion needs iss (the client id)")
    if form.get("client_id", client_id) != client_id:
        raise InvalidClient("client_id differs from the assertion's iss")
    key_id = header.get("kid")
    if not isinstance(key_id, str) or not key_id:
        raise InvalidClient("the client assertion needs kid (the key id) in its header")
    instance_id = issuer.instance_id
    public_pem: str | None = None
    async with provider.read(conn) as c:
        app = await find_app(c, instance_id, client_id)
        user = None if app else await find_machine(c, instance_id, client_id, by_id=True)
        if app is not None:
            if app_is_usable(app) and app["auth_method_type"] == "private_key_jwt":
                app_key = await usable_app_key(c, instance_id, client_id, key_id)
                public_pem = app_key.public_key if app_key else None
        elif user is not None and machine_is_usable(user):
            machine_key = await usable_machine_key(c, instance_id, user["id"], key_id)
            public_pem = machine_key.public_key if machine_key else None
    if public_pem is None:
        raise InvalidClient(FAILED)
    settings = provider.settings
    rules = AssertionRules(
        audiences=frozenset({issuer.url, issuer.token_endpoint, endpoint}),
        max_lifetime=settings.MaxAssertionLifetime,
        skew=settings.ClockSkew,
        require_jti=True,
    )
    _claims, expires, jti = verify_assertion(
        token, header, load_public_pem(public_pem), client_id, rules, InvalidClient
    )
    assert jti is not None
    if not await replay.first_use(provider.runtime.db, instance_id, client_id, jti, expires):
        raise InvalidClient("the client assertion was used before (jti)")
    if app is not None:
        return app_client(app, PRIVATE_KEY_JWT)
    assert user is not None
    return machine_client(user, client_id, PRIVATE_KEY_JWT)
