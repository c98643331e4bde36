"""Checking a DPoP proof (RFC 9449 §4.3) and the thumbprint of its key (RFC 7638).

A request carries at most one proof (`one_proof`); a proof is valid when,
in this order (each check a function raising `InvalidDPoPProof`):

- `check_header`: it is a compact JWS whose header says `typ: dpop+jwt`,
  an `alg` from `ALGORITHMS` (asymmetric only: `none` and HMAC never), and a
  `jwk` that is a public key of a type that `alg` signs with. A JWK with
  private members (`d`, `p`, `q`, …) or a symmetric one (`kty: oct`) is
  refused: the client would have disclosed its key.
- `check_signature`: the signature verifies with that `jwk` and `alg` only.
- `check_claims`: `jti` (a string of at most 256 characters), `htm`, `htu`
  and `iat` are present and typed.
- `check_method_and_uri`: `htm` is the request's method and `htu` its URI,
  compared without query and fragment, scheme and host case-insensitive and
  the default port implied (RFC 3986 §6.2.3). The URI is the endpoint under
  the request's issuer (per instance, `issuer.Issuer.endpoint`).
- `check_iat`: `iat` is no older than `DPoPProofLifetime` and not in the
  future by more than `ClockSkew`.
- `check_ath`: when the proof comes with an access token, `ath` is the
  base64url SHA-256 of that token; otherwise it is not checked.
- the nonce (see `nonce`) when the server asks for one, and the `jti`
  single use, both checked by the caller (`binding.verified_proof`), which
  knows the instance and the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt

from donjon.plugins.oidc.errors import InvalidDPoPProof

#: The proof's media type (RFC 9449 §4.2).
TYPE = "dpop+jwt"
#: The header that carries a proof.
HEADER = "dpop"
#: Proof signing algorithms, by the JWK key type that signs with them.
ALGORITHMS: dict[str, str] = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "EdDSA": "OKP",
}
#: The curve an ECDSA algorithm signs with.
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
OKP_CURVES = ("Ed25519", "Ed448")
#: JWK members that belong to a private or symmetric key (RFC 7518 §6).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The members a thumbprint hashes, by key type (RFC 7638 §3.2).
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
MIN_RSA_BITS = 2048
MAX_PROOF = 8192
MAX_JTI = 256


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed the checks of this module."""

    #: The JWK SHA-256 thumbprint of the proof's key (RFC 7638): what tokens are bound to.
    jkt: str
    jti: str
    iat: int
    #: The server nonce the proof carries, if any.
    nonce: str | None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: base64url SHA-256 of the required members, sorted, no whitespace."""
    members = THUMBPRINT_MEMBERS.get(jwk.get("kty", ""))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise InvalidDPoPProof("jwk: not a complete EC, RSA or OKP public key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(access_token: str) -> str:
    """The `ath` of a proof sent with `access_token` (RFC 9449 §4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def one_proof(values: Sequence[str]) -> str | None:
    """The request's proof: None without a `DPoP` header, refused when there are several."""
    if not values:
        return None
    if len(values) > 1 or "," in values[0]:
        raise InvalidDPoPProof("send one DPoP proof per request")
    proof = values[0].strip()
    if not proof:
        raise InvalidDPoPProof("the DPoP header is empty")
    return proof


def check_header(proof: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(header, alg, jwk) of a well-formed proof whose header passes the rules above."""
    if len(proof) > MAX_PROOF or proof.count(".") != 2:
        raise InvalidDPoPProof("the DPoP proof is not a compact JWS")
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWS") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != TYPE:
        raise InvalidDPoPProof(f"typ: must be {TYPE}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidDPoPProof(
            f"alg: {alg!r} is not supported (supported: {', '.join(ALGORITHMS)})"
        )
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("jwk: the proof's header must hold the public key")
    check_public_jwk(jwk, alg)
    return header, alg, jwk


def check_public_jwk(jwk: dict[str, Any], alg: str) -> None:
    """The JWK is public, of the type `alg` signs with (and its curve)."""
    private = sorted(PRIVATE_MEMBERS & set(jwk))
    if private:
        raise InvalidDPoPProof(f"jwk: holds private key members ({', '.join(private)})")
    kty = jwk.get("kty")
    if kty != ALGORITHMS[alg]:
        raise InvalidDPoPProof(f"jwk: kty {kty!r} does not sign {alg}")
    if kty == "EC" and jwk.get("crv") != EC_CURVES[alg]:
        raise InvalidDPoPProof(f"jwk: {alg} needs curve {EC_CURVES[alg]}")
    if kty == "OKP" and jwk.get("crv") not in OKP_CURVES:
        raise InvalidDPoPProof("jwk: EdDSA needs curve Ed25519 or Ed448")


def check_signature(proof: str, alg: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """The proof's claims, when the signature verifies with `jwk` and `alg` only."""
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("jwk: not a usable public key") from None
    if ALGORITHMS[alg] == "RSA" and key.key_size < MIN_RSA_BITS:
        raise InvalidDPoPProof(f"jwk: RSA keys need at least {MIN_RSA_BITS} bits")
    try:
        claims = jwt.decode(
            proof,
            key=key,
            algorithms=[alg],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidDPoPProof("the DPoP proof's signature does not verify") from None
    except jwt.PyJWTError:
        raise InvalidDPoPProof("the DPoP proof is not a well-formed signed JWT") from None
    if not isinstance(claims, dict):
        raise InvalidDPoPProof("the DPoP proof's claims are not a JSON object")
    return claims


def check_claims(claims: dict[str, Any]) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidDPoPProof(f"jti: required, a string of at most {MAX_JTI} characters")
    for name in ("htm", "htu"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidDPoPProof(f"{name}: required")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidDPoPProof("iat: required, seconds since the epoch")


def normalized_uri(uri: str) -> str:
    """`uri` without query and fragment, scheme and host lower-cased, default port dropped."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def check_method_and_uri(claims: dict[str, Any], method: str, uri: str) -> None:
    if claims["htm"] != method.upper():
        raise InvalidDPoPProof(f"htm: must be {method.upper()}, the request's method")
    expected = normalized_uri(uri)
    if normalized_uri(claims["htu"]) != expected:
        raise InvalidDPoPProof(f"htu: must be {expected}, the request's URI")


def check_iat(claims: dict[str, Any], lifetime: timedelta, skew: timedelta, now: float) -> None:
    iat = claims["iat"]
    if iat > now + skew.total_seconds():
        raise InvalidDPoPProof("iat: in the future")
    if iat < now - lifetime.total_seconds() - skew.total_seconds():
        raise InvalidDPoPProof(
            f"iat: the proof is older than {int(lifetime.total_seconds())}s; make a fresh one"
        )


def check_ath(claims: dict[str, Any], access_token: str | None) -> None:
    if access_token is None:
        return
    if claims.get("ath") != access_token_hash(access_token):
        raise InvalidDPoPProof("ath: must be the SHA-256 of the access token sent with the proof")


def check_proof(
    proof: str,
    *,
    method: str,
    uri: str,
    lifetime: timedelta,
    skew: timedelta,
    access_token: str | None = None,
    now: float | None = None,
) -> DPoPProof:
    """Every check of the module docstring but the nonce and the jti's single use."""
    _header, alg, jwk = check_header(proof)
    claims = check_signature(proof, alg, jwk)
    check_claims(claims)
    check_method_and_uri(claims, method, uri)
    check_iat(claims, lifetime, skew, time.time() if now is None else now)
    check_ath(claims, access_token)
    nonce = claims.get("nonce")
    return DPoPProof(
        jkt=jwk_thumbprint(jwk),
        jti=claims["jti"],
        iat=claims["iat"],
        nonce=nonce if isinstance(nonce, str) else None,
    )
