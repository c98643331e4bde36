"""The tokens a token exchange (RFC 8693) accepts as `subject_token` and `actor_token`.

| type (`*_token_type`)                          | subject_token                  | actor_token |
|------------------------------------------------|--------------------------------|-------------|
| `urn:ietf:params:oauth:token-type:access_token` | opaque or JWT                  | yes         |
| `urn:ietf:params:oauth:token-type:id_token`     | yes                            | yes         |
| `urn:ietf:params:oauth:token-type:jwt`          | with an actor only (see below) | no          |
| `urn:zitadel:params:oauth:token-type:user_id`   | with an actor only             | no          |
| `urn:ietf:params:oauth:token-type:refresh_token` | no                            | no          |

Each check refuses with `invalid_request` (RFC 8693 §2.2.2), naming the
parameter and no more than "invalid, expired or revoked":

- access token: active in this instance (`tokens.lookup`: signature and
  key of this instance, not revoked, not expired, user active), and the
  exchanging client (its client id or project) is in its audience. As an
  actor token, a personal access token of an active user of this instance
  is accepted too (an impersonating service's credential, as in ZITADEL);
  it carries no scopes and no audience;
- ID token: signed by one of this instance's web keys with `typ: JWT`
  (an `at+jwt` is not an ID token), this issuer, not expired, issued to
  the exchanging client (its client id or project in `aud`), user active;
- JWT: an assertion about `sub` (the user to impersonate), `aud` this
  issuer, short-lived (`MaxAssertionLifetime`), `jti` single-use when
  present, signed either by the exchanging client (`iss` its client id,
  `kid` one of its application keys), as in ZITADEL, or by a machine user
  (`iss` its user id, `kid` one of its keys), which the grant then requires
  to be the actor: one asserts for oneself only;
- user id: an active user of this instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt

from donjon.core.api.auth import principal_from_pat
from donjon.core.identity.users import ACTIVE, INITIAL
from donjon.plugins.oidc import replay
from donjon.plugins.oidc.assertion import (
    AssertionRules,
    check_alg,
    check_audience,
    check_expiry,
    check_jti,
    check_signature,
    load_public_pem,
    unverified_parts,
)
from donjon.plugins.oidc.claims import load_user
from donjon.plugins.oidc.clients import (
    find_machine,
    machine_is_usable,
    usable_app_key,
    usable_machine_key,
)
from donjon.plugins.oidc.errors import InvalidRequest
from donjon.plugins.oidc.keys.generate import public_key_of
from donjon.plugins.oidc.tokens.lookup import active_token

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client
    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider

ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
REFRESH_TOKEN = "urn:ietf:params:oauth:token-type:refresh_token"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
USER_ID = "urn:zitadel:params:oauth:token-type:user_id"
KNOWN = (ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, JWT, USER_ID)
SUBJECT_TYPES = (ACCESS_TOKEN, ID_TOKEN, JWT, USER_ID)
ACTOR_TYPES = (ACCESS_TOKEN, ID_TOKEN)
#: Subject types that only make sense with an actor (impersonation).
ACTOR_ONLY = (JWT, USER_ID)
MAX_TOKEN = 8192
SUBJECT_TOKEN_PARAM, ACTOR_TOKEN_PARAM = "subject_token", "actor_token"


@dataclass(frozen=True, slots=True)
class ExchangeToken:
    """What a verified subject or actor token says."""

    token_type: str
    user: dict[str, Any]
    audience: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ()
    auth_time: datetime | None = None
    #: The `act` the token already carries (it was exchanged before); empty for none.
    actor: dict[str, Any] = field(default_factory=dict)
    #: Who signed a `jwt` subject token: the client's id or a machine user's id.
    signer: str = ""
    #: The DPoP key an access token is bound to (RFC 9449); "" for none.
    dpop_jkt: str = ""

    @property
    def user_id(self) -> str:
        return str(self.user["id"])


def check_type(param: str, token: str, token_type: str, allowed: tuple[str, ...]) -> None:
    """The token and its type are present, and the type is one `param` accepts."""
    if not token:
        raise InvalidRequest(f"{param}: required")
    if len(token) > MAX_TOKEN:
        raise InvalidRequest(f"{param}: too long")
    if not token_type:
        raise InvalidRequest(f"{param}_type: required")
    if token_type not in KNOWN:
        raise InvalidRequest(f"{param}_type: unknown token type {token_type!r}")
    if token_type not in allowed:
        raise InvalidRequest(f"{param}_type: {token_type} is not accepted as {param}")


async def verify_token(
    provider: Provider,
    issuer: Issuer,
    client: Client,
    param: str,
    token: str,
    token_type: str,
) -> ExchangeToken:
    """The verified token of `param` (subject_token or actor_token), or InvalidRequest."""
    invalid = InvalidRequest(f"{param}: invalid, expired or revoked")
    if token_type == ACCESS_TOKEN:
        found = await _access_token(provider, issuer, client, token)
        if found is None and param == ACTOR_TOKEN_PARAM:
            found = await _personal_access_token(provider, issuer, token)
    elif token_type == ID_TOKEN:
        found = await _id_token(provider, issuer, client, token)
    elif token_type == JWT:
        found = await _jwt(provider, issuer, client, token, param)
    else:
        found = await _user_id(provider, issuer, token)
    if found is None:
        raise invalid
    return found


def _for_client(client: Client, audience: tuple[str, ...]) -> bool:
    return client.client_id in audience or bool(client.project_id and client.project_id in audience)


async def _usable_user(provider: Provider, issuer: Issuer, user_id: str) -> dict[str, Any] | None:
    async with provider.runtime.db.read() as conn:
        user = await load_user(conn, issuer.instance_id, user_id)
    if user is None or user["state"] not in (ACTIVE, INITIAL):
        return None
    return user


async def _access_token(
    provider: Provider, issuer: Issuer, client: Client, token: str
) -> ExchangeToken | None:
    found = await active_token(provider, issuer.instance_id, token)
    if found is None or not _for_client(client, found.audience):
        return None
    user = await _usable_user(provider, issuer, found.user_id)
    if user is None:
        return None
    return ExchangeToken(
        ACCESS_TOKEN,
        user,
        audience=found.audience,
        scopes=found.scopes,
        auth_methods=found.auth_methods,
        auth_time=found.created_at,
        actor=found.actor,
        dpop_jkt=found.dpop_jkt,
    )


async def _personal_access_token(
    provider: Provider, issuer: Issuer, token: str
) -> ExchangeToken | None:
    found = await principal_from_pat(provider.runtime, issuer.instance_id, token)
    if found is None:
        return None
    user = await _usable_user(provider, issuer, found.user_id)
    return None if user is None else ExchangeToken(ACCESS_TOKEN, user)


async def _id_token(
    provider: Provider, issuer: Issuer, client: Client, token: str
) -> ExchangeToken | None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid, typ = header.get("kid"), header.get("typ")
    if not isinstance(kid, str) or not isinstance(typ, str) or typ.upper() != "JWT":
        return None
    key = await provider.keys.verification_key(issuer.instance_id, kid)
    if key is None or header.get("alg") != key.alg:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=public_key_of(key.public_jwk),  # type: ignore[arg-type]
            algorithms=[key.alg],
            issuer=issuer.url,
            options={"verify_aud": False, "require": ["sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    aud = claims["aud"]
    audience = tuple(a for a in ([aud] if isinstance(aud, str) else aud) if isinstance(a, str))
    if not _for_client(client, audience) or not isinstance(claims["sub"], str):
        return None
    user = await _usable_user(provider, issuer, claims["sub"])
    if user is None:
        return None
    amr = claims.get("amr")
    auth_time = claims.get("auth_time")
    act = claims.get("act")
    return ExchangeToken(
        ID_TOKEN,
        user,
        audience=audience,
        auth_methods=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        auth_time=(datetime.fromtimestamp(auth_time, UTC) if isinstance(auth_time, int) else None),
        actor=act if isinstance(act, dict) else {},
    )


async def _jwt_key(
    provider: Provider, issuer: Issuer, client: Client, signer: str, key_id: str
) -> str | None:
    """The public PEM of `signer`'s key `key_id`: the client's application key, or a
    machine user's key; None when there is no such usable key."""
    instance_id = issuer.instance_id
    async with provider.runtime.db.read() as conn:
        if signer == client.client_id:
            app_key = await usable_app_key(conn, instance_id, signer, key_id)
            return app_key.public_key if app_key else None
        machine = await find_machine(conn, instance_id, signer, by_id=True)
        if machine is None or not machine_is_usable(machine) or machine["id"] != signer:
            return None
        machine_key = await usable_machine_key(conn, instance_id, signer, key_id)
        return machine_key.public_key if machine_key else None


async def _jwt(
    provider: Provider, issuer: Issuer, client: Client, token: str, param: str
) -> ExchangeToken | None:
    try:
        header, unverified = unverified_parts(token, InvalidRequest)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{param}: {exc.description}") from None
    signer, key_id = unverified.get("iss"), header.get("kid")
    if not isinstance(signer, str) or not isinstance(key_id, str):
        return None
    instance_id = issuer.instance_id
    public_pem = await _jwt_key(provider, issuer, client, signer, key_id)
    if public_pem is None:
        return None
    settings = provider.settings
    rules = AssertionRules(
        audiences=frozenset({issuer.url, issuer.token_endpoint}),
        max_lifetime=settings.MaxAssertionLifetime,
        skew=settings.ClockSkew,
        require_jti=False,
    )
    public = load_public_pem(public_pem)
    try:
        claims = check_signature(
            token, public, check_alg(header, public, InvalidRequest), InvalidRequest
        )
        check_audience(claims, rules.audiences, InvalidRequest)
        expires = check_expiry(claims, rules, InvalidRequest)
        jti = check_jti(claims, rules, InvalidRequest)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{param}: {exc.description}") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidRequest(f"{param}: sub (the user to act as) is required")
    if jti is not None and not await replay.first_use(
        provider.runtime.db, instance_id, signer, jti, expires
    ):
        raise InvalidRequest(f"{param}: the JWT was used before (jti)")
    user = await _usable_user(provider, issuer, subject)
    if user is None:
        return None
    return ExchangeToken(JWT, user, signer=signer)


async def _user_id(provider: Provider, issuer: Issuer, token: str) -> ExchangeToken | None:
    user = await _usable_user(provider, issuer, token)
    return None if user is None else ExchangeToken(USER_ID, user)
