"""JWT assertions (RFC 7523): client assertions (`private_key_jwt`) and JWT profile grants.

Checks, each a small function raising the caller's error class
(`invalid_client` for client authentication, `invalid_grant` for a grant):

- `check_alg`: the header's `alg` is one the signing key can make. `none`
  and every HMAC algorithm are refused outright, so a public key can never
  be used as an HMAC secret (algorithm confusion).
- `check_signature`: verified with that key and that algorithm only.
- `check_issuer_and_subject`: `iss` and `sub` both name the expected party.
- `check_audience`: `aud` (a string or a list) names this provider: its
  issuer, or the endpoint being called.
- `check_expiry`: `exp` is present, not past, and not further away than
  `MaxAssertionLifetime`; `nbf` and `iat`, when present, are not in the
  future (each with `ClockSkew`).
- `check_jti`: the id is present when required; its single use is recorded
  by the caller (`donjon.plugins.oidc.replay`), which knows the database.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from donjon.plugins.oidc.errors import OAuthError

RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
#: What discovery advertises for assertions.
ASSERTION_ALGS = (*RSA_ALGS, "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True, slots=True)
class AssertionRules:
    """What an assertion must satisfy beyond its signature."""

    audiences: frozenset[str]
    max_lifetime: timedelta
    skew: timedelta
    require_jti: bool


def unverified_parts(token: str, error: type[OAuthError]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) before any check: only to find the key. Error when not a JWS."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise error("the assertion is not a well-formed signed JWT") from None
    if not isinstance(claims, dict):
        raise error("the assertion's claims are not a JSON object")
    return header, claims


def load_public_pem(pem: str) -> PublicKeyTypes:
    return serialization.load_pem_public_key(pem.encode())


def algorithms_for(key: PublicKeyTypes) -> tuple[str, ...]:
    """The JWS algorithms `key` can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = EC_ALGS.get(key.curve.name)
        return (alg,) if alg else ()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("EdDSA",)
    return ()


def check_alg(header: dict[str, Any], key: PublicKeyTypes, error: type[OAuthError]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise error("unsigned assertions (alg none) are refused")
    if alg.upper().startswith("HS"):
        raise error(f"symmetric algorithms ({alg}) are refused: sign with your private key")
    allowed = algorithms_for(key)
    if alg not in allowed:
        raise error(f"alg {alg} does not match the key (expected one of {', '.join(allowed)})")
    return alg


def check_signature(
    token: str, key: PublicKeyTypes, alg: str, error: type[OAuthError]
) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key=key,  # type: ignore[arg-type]
            algorithms=[alg],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        raise error("the assertion's signature does not verify") from None


def check_issuer_and_subject(
    claims: dict[str, Any], expected: str, error: type[OAuthError]
) -> None:
    if claims.get("iss") != expected:
        raise error(f"iss must be {expected!r}")
    if claims.get("sub") != expected:
        raise error(f"sub must be {expected!r}")


def check_audience(
    claims: dict[str, Any], audiences: Collection[str], error: type[OAuthError]
) -> None:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    accepted = {a.rstrip("/") for a in audiences}
    if not any(isinstance(v, str) and v.rstrip("/") in accepted for v in values):
        raise error(f"aud must name this issuer ({min(audiences, key=len)})")


def check_expiry(
    claims: dict[str, Any], rules: AssertionRules, error: type[OAuthError]
) -> datetime:
    """The assertion's expiry; error when missing, past, too far, or nbf/iat in the future."""
    now = time.time()
    skew = rules.skew.total_seconds()
    exp = claims.get("exp")
    if not _number(exp):
        raise error("exp is required (a NumericDate)")
    if exp <= now - skew:
        raise error("the assertion has expired")
    if exp > now + rules.max_lifetime.total_seconds() + skew:
        raise error(
            f"the assertion lives too long (exp at most {rules.max_lifetime.total_seconds():g}s"
            " from now)"
        )
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not _number(value) or value > now + skew):
            raise error(f"{name} must be a NumericDate that is not in the future")
    return datetime.fromtimestamp(exp, UTC)


def check_jti(claims: dict[str, Any], rules: AssertionRules, error: type[OAuthError]) -> str | None:
    jti = claims.get("jti")
    if jti is None and not rules.require_jti:
        return None
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise error("jti is required (a unique id of at most 256 characters)")
    return jti


def verify_assertion(
    token: str,
    header: dict[str, Any],
    key: PublicKeyTypes,
    expected_party: str,
    rules: AssertionRules,
    error: type[OAuthError],
) -> tuple[dict[str, Any], datetime, str | None]:
    """Run every check; (claims, expiry, jti) of an assertion that passes them."""
    alg = check_alg(header, key, error)
    claims = check_signature(token, key, alg, error)
    check_issuer_and_subject(claims, expected_party, error)
    check_audience(claims, rules.audiences, error)
    expires = check_expiry(claims, rules, error)
    return claims, expires, check_jti(claims, rules, error)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
