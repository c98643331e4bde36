"""Helpers for the DPoP tests: a client's DPoP key and the proofs it signs. No tests here."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from donjon.plugins.oidc.dpop.proof import jwk_thumbprint


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode()).digest())


class DPoPKey:
    """A client's DPoP key pair (ES256 by default) that signs proofs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            self.public_jwk: dict[str, Any] = ECAlgorithm.to_jwk(
                self.private.public_key(), as_dict=True
            )
        elif alg in ("RS256", "PS256"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public_jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.public_jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)

    @property
    def jkt(self) -> str:
        return jwk_thumbprint(self.public_jwk)

    def private_jwk(self) -> dict[str, Any]:
        algorithm = {"ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}.get(self.alg, RSAAlgorithm)
        return algorithm.to_jwk(self.private, as_dict=True)  # type: ignore[attr-defined]

    def proof(
        self,
        htm: str,
        htu: str,
        *,
        access_token: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        nonce: str | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "htm": htm,
            "htu": htu,
            "iat": int(time.time()) if iat is None else iat,
            "jti": jti or uuid.uuid4().hex,
            **claims,
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        for name in drop:
            body.pop(name, None)
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=headers)


def unsigned_proof(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWS made by hand (`alg: none`, HMAC): JWT libraries refuse to build these."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return f"{signing_input}.{b64url(signature)}"


def hs256_proof(key: DPoPKey, htm: str, htu: str) -> str:
    """An HS256 proof whose HMAC secret is the public JWK (algorithm confusion)."""
    import hmac

    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk}
    claims = {"htm": htm, "htu": htu, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    secret = json.dumps(key.public_jwk).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"
