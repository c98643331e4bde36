"""Making web keys: a key pair for an algorithm, its public JWK, its PEM.

ES256, ES384 and ES512 use P-256, P-384 and P-521; RS256, RS384 and RS512
RSA keys of 2048 (the default, what ZITADEL makes), 3072 or 4096 bits;
EdDSA Ed25519.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "EdDSA")
RSA_BITS = 2048
RSA_SIZES = (2048, 3072, 4096)
EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def new_private_key(alg: str, rsa_bits: int = RSA_BITS) -> PrivateKeyTypes:
    """A fresh private key for `alg` (one of ALGORITHMS); ValueError for another."""
    if alg in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[alg]())
    if alg.startswith("RS") and alg in ALGORITHMS:
        if rsa_bits not in RSA_SIZES:
            raise ValueError(f"RSA web keys have {', '.join(map(str, RSA_SIZES))} bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"web keys are made for {', '.join(ALGORITHMS)}, not {alg!r}")


def rsa_bits_of(jwk: dict[str, Any]) -> int:
    """The modulus size of an RSA JWK (RSA_BITS for other key types)."""
    if jwk.get("kty") != "RSA":
        return RSA_BITS
    n = jwk["n"]
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return len(raw.lstrip(b"\0")) * 8


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
