"""Making web keys: a key pair for an algorithm, its public JWK, its PEM.

ES256 uses P-256, RS256 RSA 2048 (what ZITADEL makes), EdDSA Ed25519.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "RS256", "EdDSA")
RSA_BITS = 2048


def new_private_key(alg: str) -> PrivateKeyTypes:
    """A fresh private key for `alg` (one of ALGORITHMS); ValueError for another."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"web keys are made for {', '.join(ALGORITHMS)}, not {alg!r}")


def private_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(pem: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem, password=None)


def public_jwk(key: PublicKeyTypes, key_id: str, alg: str) -> dict[str, Any]:
    """The public key as a JWK with `kid`, `alg` and `use: sig`."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    else:
        raise ValueError(f"no JWK for a {type(key).__name__}")
    if isinstance(jwk, str):  # older PyJWT returns JSON text
        jwk = json.loads(jwk)
    return {**jwk, "kid": key_id, "alg": alg, "use": "sig"}


def public_key_of(jwk: dict[str, Any]) -> PublicKeyTypes:
    """The verification key of a stored public JWK."""
    kty = jwk.get("kty")
    if kty == "EC":
        return ECAlgorithm.from_jwk(jwk)  # type: ignore[return-value]
    if kty == "RSA":
        return RSAAlgorithm.from_jwk(jwk)  # type: ignore[return-value]
    if kty == "OKP":
        return OKPAlgorithm.from_jwk(jwk)  # type: ignore[return-value]
    raise ValueError(f"unknown key type {kty!r}")
