"""Issuing access tokens (and ID tokens) for a subject: one push per issuance.

An access token is either opaque (`bearer`: 256 random bits, stored as a
SHA-256 digest) or a JWT (`jwt`: RFC 9068, `typ: at+jwt`, signed with the
instance's active web key). Which one follows the subject: a machine user's
`access_token_type`, or the app's for flows that have an app. Both are
recorded by the one `oidc_session.added` event, so revocation and
introspection work the same for both.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt

from donjon.core import ids
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import secrets
from donjon.plugins.oidc.claims import customized
from donjon.plugins.oidc.tokens.events import AGGREGATE, BEARER, JWT, OIDCSessionAdded

if TYPE_CHECKING:
    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider
    from donjon.plugins.oidc.scopes import GrantedScope

AT_JWT_TYPE = "at+jwt"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    token_id: str
    token_type: str
    expires_in: int
    audience: list[str]
    #: The DPoP key's thumbprint the token is bound to; "" for a Bearer token.
    dpop_jkt: str = ""

    @property
    def scheme(self) -> str:
        """The response's `token_type` (RFC 9449 §5: `DPoP` for a bound token)."""
        return "DPoP" if self.dpop_jkt else "Bearer"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def issue_access_token(
    provider: Provider,
    issuer: Issuer,
    *,
    user: dict[str, Any],
    client_id: str,
    grant_type: str,
    scope: GrantedScope,
    token_type: str,
    auth_methods: list[str],
    extra_claims: dict[str, Any] | None = None,
    dpop_jkt: str = "",
) -> IssuedToken:
    """Make the access token and push its `oidc_session.added` event.

    `user` is the subject's `users` row; `extra_claims` go into a JWT access
    token (role claims, for instance) and are ignored for an opaque one.
    """
    issued, event = await build_access_token(
        provider,
        issuer,
        user=user,
        client_id=client_id,
        grant_type=grant_type,
        scope=scope,
        token_type=token_type,
        auth_methods=auth_methods,
        extra_claims=extra_claims,
        dpop_jkt=dpop_jkt,
    )
    session = Aggregate(AGGREGATE, ids.new_id(), issuer.instance_id, user["resource_owner"])
    await provider.runtime.store.push(
        AggregateChanges(session, [event], expected_sequence=0), creator=user["id"]
    )
    return issued


async def build_access_token(
    provider: Provider,
    issuer: Issuer,
    *,
    user: dict[str, Any],
    client_id: str,
    grant_type: str,
    scope: GrantedScope,
    token_type: str,
    auth_methods: list[str],
    extra_claims: dict[str, Any] | None = None,
    audience: list[str] | None = None,
    actor: dict[str, Any] | None = None,
    dpop_jkt: str = "",
) -> tuple[IssuedToken, OIDCSessionAdded]:
    """The access token and the event that records it, for the caller to push
    (as `oidc_session.added`, or as `AccessTokenAdded` to an existing session).
    `actor` is RFC 8693's `act` (token exchange): a JWT carries it as a claim,
    and the event records it for introspection. With `dpop_jkt` the token is bound
    to that DPoP key: recorded with the token, and in a JWT as the confirmation
    claim `cnf: {"jkt": ...}` (RFC 9449 §6.1)."""
    lifetime = provider.settings.AccessTokenLifetime
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + lifetime
    token_id = ids.new_id()
    if audience is None:
        audience = scope.audience(client_id, issuer.instance_id)
    if token_type == JWT:
        base = {**(extra_claims or {}), "sub": user["id"], "client_id": client_id}
        added = await customized(
            provider.runtime,
            "access_token",
            base,
            user_id=user["id"],
            client_id=client_id,
            instance_id=issuer.instance_id,
        )
        claims = {
            **(extra_claims or {}),
            **added,
            "iss": issuer.url,
            "sub": user["id"],
            "aud": audience,
            "client_id": client_id,
            "exp": int(expires.timestamp()),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "jti": token_id,
            "scope": scope.text,
        }
        if actor:
            claims["act"] = actor
        if dpop_jkt:
            claims["cnf"] = {"jkt": dpop_jkt}
        token, digest = await sign(provider, issuer.instance_id, claims, AT_JWT_TYPE), ""
    else:
        token_type = BEARER
        token = secrets.new_secret()
        digest = secrets.digest(token)
    event = OIDCSessionAdded(
        user_id=user["id"],
        org_id=user["resource_owner"],
        client_id=client_id,
        grant_type=grant_type,
        token_id=token_id,
        token_type=token_type,
        token_digest=digest,
        expiration=rfc3339(expires),
        audience=audience,
        scopes=list(scope.scopes),
        auth_methods=auth_methods,
        actor=dict(actor or {}),
        dpop_jkt=dpop_jkt,
    )
    issued = IssuedToken(
        token, token_id, token_type, int(lifetime.total_seconds()), audience, dpop_jkt
    )
    return issued, event


async def sign(provider: Provider, instance_id: str, claims: dict[str, Any], typ: str) -> str:
    """`claims` as a JWS with the instance's active web key."""
    key, private = await provider.keys.signing_key(instance_id)
    return jwt.encode(claims, private, algorithm=key.alg, headers={"kid": key.id, "typ": typ})  # type: ignore[arg-type]


async def issue_id_token(
    provider: Provider,
    issuer: Issuer,
    *,
    user_claims: dict[str, Any],
    client_id: str,
    audience: list[str],
    auth_time: int | None = None,
    nonce: str = "",
    amr: list[str] | None = None,
    access_token: str = "",
    sid: str = "",
) -> str:
    """An ID token for the subject of `user_claims` (which holds `sub`), with
    `nonce`, `amr`, `at_hash` (of `access_token`) and `sid` when given."""
    now = int(time.time())
    lifetime: timedelta = provider.settings.IdTokenLifetime
    added = await customized(
        provider.runtime,
        "id_token",
        user_claims,
        user_id=str(user_claims.get("sub", "")),
        client_id=client_id,
        instance_id=issuer.instance_id,
    )
    claims = {
        **user_claims,
        **added,
        "iss": issuer.url,
        "aud": audience,
        "azp": client_id,
        "exp": now + int(lifetime.total_seconds()),
        "iat": now,
        "auth_time": auth_time if auth_time is not None else now,
        "client_id": client_id,
    }
    if nonce:
        claims["nonce"] = nonce
    if amr:
        claims["amr"] = amr
    if sid:
        claims["sid"] = sid
    key, private = await provider.keys.signing_key(issuer.instance_id)
    if access_token:
        claims["at_hash"] = token_hash(access_token, key.alg)
    return jwt.encode(claims, private, algorithm=key.alg, headers={"kid": key.id, "typ": "JWT"})  # type: ignore[arg-type]


def token_hash(token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 `at_hash`: the left half of the token's hash, base64url.
    The hash of the signing algorithm (SHA-256 for ES256 and RS256, SHA-384 for
    ES384/RS384, SHA-512 for ES512/RS512); SHA-512 for EdDSA (Ed25519), as
    OpenID's errata do."""
    hasher = {"384": hashlib.sha384, "512": hashlib.sha512}.get(alg[-3:], hashlib.sha256)
    if alg == "EdDSA":
        hasher = hashlib.sha512
    digest = hasher(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
