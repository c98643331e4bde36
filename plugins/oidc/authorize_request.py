"""Checking an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9700).

The checks run in an order that decides where an error goes (RFC 6749
§4.1.2.1): until the client and its redirect URI are known good, nothing may
be sent to the redirect URI, so those errors are `NotRedirectable` (the
endpoint shows a plain error page). Every later error is an `OAuthError`
sent back to the checked redirect URI with `state` and `iss`.

1. `client_id` names an OIDC app of the instance, active, in an active project;
2. `redirect_uri` is one the app registered (`redirect_uris`: exact, loopback
   port rule for native apps);
3. `request` / `request_uri` (request objects) are not supported;
4. `response_type` is one the app allows (`code`; `id_token`,
   `id_token token` only for apps with the implicit grant);
5. `response_mode` is `query` or `fragment` (implicit responses never use query);
6. PKCE (`pkce`): S256 only, required for public clients;
7. `scope`: at most 4 KiB, reserved project scopes name active projects, org
   scopes existing orgs; `openid` is needed for `nonce`-bound implicit flows;
8. `prompt` values are known, `none` stands alone; `max_age` is a number;
9. `dpop_jkt` (RFC 9449 §10), when sent, is a SHA-256 JWK thumbprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity import apps
from donjon.plugins.oidc.clients import app_is_usable
from donjon.plugins.oidc.dpop.binding import check_dpop_jkt
from donjon.plugins.oidc.errors import InvalidRequest, InvalidScope, OAuthError
from donjon.plugins.oidc.pkce import check_challenge
from donjon.plugins.oidc.redirect_uris import redirect_uri_matches
from donjon.plugins.oidc.scopes import (
    OPENID,
    ORG_DOMAIN,
    PROJECT_AUDIENCE,
    check_project,
    org_of_domain,
    split_scope,
)

CODE = "code"
ID_TOKEN = "id_token"
ID_TOKEN_TOKEN = "id_token token"
#: response_type parameter -> the app's stored response type.
RESPONSE_TYPES = {CODE: "code", ID_TOKEN: "id_token", ID_TOKEN_TOKEN: "id_token_token"}
PROMPTS = ("none", "login", "consent", "select_account", "create")
MAX_PARAM = 2048
_MAX_AGE = re.compile(r"\d{1,10}")


class NotRedirectable(Exception):
    """An error about the client or redirect URI: shown to the browser, never redirected."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class UnauthorizedClientAuthorize(OAuthError):
    error = "unauthorized_client"


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where errors and results go once the redirect URI is checked."""

    redirect_uri: str
    state: str
    response_mode: str


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A checked authorization request, ready to be stored."""

    app: dict[str, Any]
    redirect: Redirect
    response_type: str
    scopes: list[str]
    nonce: str
    code_challenge: str
    code_challenge_method: str
    prompt: list[str]
    max_age: int
    login_hint: str
    ui_locales: list[str]
    #: RFC 9449 §10: the code is redeemed only with a DPoP proof of this key.
    dpop_jkt: str = ""

    PUBLIC: ClassVar[str] = "none"


async def check_client_and_redirect(
    conn: AsyncConnection, instance_id: str, params: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """Steps 1 and 2: the app and the redirect URI; NotRedirectable otherwise."""
    client_id = params.get("client_id", "")
    if not client_id:
        raise NotRedirectable("client_id: required")
    app = await apps.app_by_client_id(conn, instance_id, client_id)
    if app is None or app["type"] != apps.OIDC:
        raise NotRedirectable("client_id: no OIDC application has this client id")
    if not app_is_usable(app):
        raise NotRedirectable("client_id: the application or its project is not active")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise NotRedirectable("redirect_uri: required")
    native = app["app_type"] == "native"
    if not redirect_uri_matches(redirect_uri, list(app["redirect_uris"] or []), native=native):
        raise NotRedirectable("redirect_uri: not registered for this application")
    return app, redirect_uri


def check_response_type(app: dict[str, Any], response_type: str) -> str:
    """Step 4: the response type, normalised (`token id_token` = `id_token token`)."""
    if not response_type:
        raise InvalidRequest("response_type: required")
    normalised = " ".join(sorted(response_type.split(), key=lambda v: v != ID_TOKEN))
    stored = RESPONSE_TYPES.get(normalised)
    if stored is None:
        raise UnsupportedResponseType(f"response_type {response_type!r} is not supported")
    allowed = app["response_types"] or []
    grants = app["grant_types"] or []
    if stored not in allowed:
        raise UnauthorizedClientAuthorize(
            f"response_type {normalised!r} is not allowed for this application"
        )
    if normalised == CODE and "authorization_code" not in grants:
        raise UnauthorizedClientAuthorize("the application may not use the authorization code flow")
    if normalised != CODE and "implicit" not in grants:
        raise UnauthorizedClientAuthorize("the application may not use the implicit flow")
    return normalised


def check_response_mode(response_type: str, response_mode: str) -> str:
    """Step 5: query for code (default), fragment for implicit (default and only)."""
    default = "query" if response_type == CODE else "fragment"
    mode = response_mode or default
    if mode not in ("query", "fragment"):
        raise InvalidRequest(f"response_mode: {mode!r} is not supported (query, fragment)")
    if response_type != CODE and mode == "query":
        raise InvalidRequest("response_mode: tokens are never sent in the query")
    return mode


async def check_scopes(conn: AsyncConnection, instance_id: str, scope: str | None) -> list[str]:
    """Step 7: the requested scopes; projects and orgs they name must exist."""
    scopes = split_scope(scope)
    for value in scopes:
        if match := PROJECT_AUDIENCE.fullmatch(value):
            if match.group(1) != "zitadel":
                await check_project(conn, instance_id, match.group(1))
        elif match := ORG_DOMAIN.fullmatch(value):
            await org_of_domain(conn, instance_id, match.group(1))
        # Org ids are checked against the user's org when the login finishes.
    return scopes


def check_prompt(prompt: str) -> list[str]:
    values = list(dict.fromkeys(prompt.split()))
    for value in values:
        if value not in PROMPTS:
            raise InvalidRequest(f"prompt: unknown value {value!r}")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt: none must not be combined with other values")
    return values


def check_max_age(value: str) -> int:
    if not value:
        return -1
    if not _MAX_AGE.fullmatch(value):
        raise InvalidRequest("max_age: must be a number of seconds")
    return int(value)


def _short(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if len(value) > MAX_PARAM:
        raise InvalidRequest(f"{name}: at most {MAX_PARAM} characters")
    return value


async def check_authorize_request(
    conn: AsyncConnection, instance_id: str, params: dict[str, str]
) -> AuthorizeRequest:
    """All the checks, in order. NotRedirectable for steps 1-2, OAuthError (with
    `.redirect` set to the checked Redirect) for the rest."""
    app, redirect_uri = await check_client_and_redirect(conn, instance_id, params)
    state = params.get("state", "")[:MAX_PARAM]
    redirect = Redirect(redirect_uri, state, "query")
    try:
        if "request" in params:
            raise RequestNotSupported("request objects are not supported")
        if "request_uri" in params:
            raise RequestUriNotSupported("request_uri is not supported")
        response_type = check_response_type(app, params.get("response_type", ""))
        mode = check_response_mode(response_type, params.get("response_mode", ""))
        redirect = Redirect(redirect_uri, state, mode)
        check_challenge(
            params.get("code_challenge", ""),
            params.get("code_challenge_method", ""),
            # PKCE binds a code; the implicit flow has none.
            public_client=app["auth_method_type"] == AuthorizeRequest.PUBLIC
            and response_type == CODE,
        )
        scopes = await check_scopes(conn, instance_id, params.get("scope"))
        nonce = _short(params, "nonce")
        if response_type != CODE:
            if OPENID not in scopes:
                raise InvalidScope("scope: the implicit flow needs openid")
            if not nonce:
                raise InvalidRequest("nonce: required for the implicit flow")
        return AuthorizeRequest(
            app=app,
            redirect=redirect,
            response_type=response_type,
            scopes=scopes,
            nonce=nonce,
            code_challenge=params.get("code_challenge", ""),
            code_challenge_method=params.get("code_challenge_method", ""),
            prompt=check_prompt(params.get("prompt", "")),
            max_age=check_max_age(params.get("max_age", "")),
            login_hint=_short(params, "login_hint"),
            ui_locales=params.get("ui_locales", "").split()[:20],
            dpop_jkt=check_dpop_jkt(params.get("dpop_jkt", "")),
        )
    except OAuthError as exc:
        exc.redirect = redirect  # type: ignore[attr-defined]
        raise
