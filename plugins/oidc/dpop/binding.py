"""What the endpoints require of DPoP proofs, and how tokens are bound (RFC 9449 §5-§10).

- `verified_proof`: the request's one proof, checked (`proof.check_proof`)
  against the endpoint's URI under the request's issuer, with the server
  nonce when `RequireDPoPNonce` is on, and its `jti` recorded as used
  (`replay`, per key thumbprint, until the proof is too old to pass anyway).
- Token endpoint: `access_token_binding`: a request with a proof gets a
  token bound to the proof's key (`token_type: DPoP`); an app registered
  with `dpopBoundAccessTokens` must send one (§5.2). `refresh_token_binding`:
  a public client's refresh token is bound to the same key (§5); a
  confidential client's is bound by its client authentication already.
  `check_bound_key`: an authorization code issued for `dpop_jkt` (§10) or
  a bound refresh token is redeemed only with a proof of that key.
- `check_dpop_jkt`: the `dpop_jkt` authorization request parameter is a
  SHA-256 JWK thumbprint; at PAR, a proof sets it (and must agree with it).
- Resource endpoints: `authorization_of` reads `Authorization: Bearer` or
  `Authorization: DPoP`; `check_presentation`: a bound token is refused
  under `Bearer`, and under `DPoP` it needs a proof of its key whose `ath`
  is the token's hash (§7.1); an unbound token is refused under `DPoP`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from donjon.core.api.auth import BEARER, presented_token
from donjon.plugins.oidc import replay
from donjon.plugins.oidc.dpop import nonce as nonces
from donjon.plugins.oidc.dpop.proof import ALGORITHMS, HEADER, DPoPProof, check_proof, one_proof
from donjon.plugins.oidc.errors import (
    DPoPChallenge,
    InvalidDPoPProof,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UseDPoPNonce,
)

if TYPE_CHECKING:
    from litestar import Request

    from donjon.plugins.oidc.clients import Client
    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider

#: What resource endpoints announce in their DPoP challenges.
ALGS = " ".join(ALGORITHMS)
#: A base64url SHA-256 thumbprint.
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
#: The replay store's issuer column for proofs signed by the key `jkt`.
REPLAY_PREFIX = "dpop:"


def proof_headers(request: Request[Any, Any, Any]) -> list[str]:
    return list(request.headers.getall(HEADER, []))


async def verified_proof(
    provider: Provider,
    issuer: Issuer,
    request: Request[Any, Any, Any],
    path: str,
    *,
    access_token: str | None = None,
) -> DPoPProof | None:
    """The request's checked proof, None when it has none (see the module docstring)."""
    return await checked_proof(
        provider,
        issuer.instance_id,
        proof_headers(request),
        method=request.method,
        uri=issuer.endpoint(path),
        access_token=access_token,
    )


async def checked_proof(
    provider: Provider,
    instance_id: str,
    proofs: Sequence[str],
    *,
    method: str,
    uri: str,
    access_token: str | None = None,
) -> DPoPProof | None:
    """`verified_proof` for a request given by its `DPoP` header values, method and URI."""
    raw = one_proof(proofs)
    if raw is None:
        return None
    settings = provider.settings
    lifetime, skew = settings.DPoPProofLifetime, settings.ClockSkew
    proof = check_proof(
        raw, method=method, uri=uri, lifetime=lifetime, skew=skew, access_token=access_token
    )
    runtime = provider.runtime
    if settings.RequireDPoPNonce and not await nonces.is_fresh_nonce(
        runtime, instance_id, proof.nonce
    ):
        raise UseDPoPNonce(
            "the DPoP proof must carry the nonce of the DPoP-Nonce header",
            await nonces.current_nonce(runtime, instance_id),
        )
    # Remembered until the proof is too old to pass check_iat anyway.
    expires = datetime.fromtimestamp(proof.iat, UTC) + lifetime + 2 * skew + timedelta(seconds=1)
    if not await replay.first_use(
        runtime.db, instance_id, REPLAY_PREFIX + proof.jkt, proof.jti, expires
    ):
        raise InvalidDPoPProof("jti: this DPoP proof was used before; make a fresh one")
    return proof


async def nonce_headers(provider: Provider, instance_id: str) -> dict[str, str]:
    """`DPoP-Nonce` for answers to requests with proofs, when nonces are required."""
    if not provider.settings.RequireDPoPNonce:
        return {}
    return {nonces.RESPONSE_HEADER: await nonces.current_nonce(provider.runtime, instance_id)}


# Token endpoint


def access_token_binding(client: Client | None, proof: DPoPProof | None) -> str:
    """The thumbprint the access token will be bound to ("" for a Bearer token)."""
    if proof is None:
        if client is not None and client.dpop_bound_access_tokens:
            raise InvalidDPoPProof(
                "this application only gets DPoP-bound tokens: send a DPoP proof"
            )
        return ""
    return proof.jkt


def refresh_token_binding(client: Client, access_jkt: str) -> str:
    """Public clients' refresh tokens are bound to the key (§5); others' to the client."""
    return access_jkt if client.auth_method == "none" else ""


def check_bound_key(bound_jkt: str, proof: DPoPProof | None, what: str) -> None:
    """A code or refresh token bound to a key is redeemed with a proof of that key."""
    if not bound_jkt:
        return
    if proof is None:
        raise InvalidDPoPProof(f"the {what} is bound to a DPoP key: send a proof signed with it")
    if proof.jkt != bound_jkt:
        raise InvalidGrant(f"the {what} is bound to another DPoP key")


def check_dpop_jkt(value: str) -> str:
    """The `dpop_jkt` authorization request parameter (§10): "" or a thumbprint."""
    if value and not _THUMBPRINT.fullmatch(value):
        raise InvalidRequest("dpop_jkt: must be the base64url SHA-256 JWK thumbprint of a key")
    return value


def pushed_dpop_jkt(params: dict[str, str], proof: DPoPProof | None) -> dict[str, str]:
    """At PAR (§10.1) a proof's key binds the code; a `dpop_jkt` sent too must agree."""
    if proof is None:
        return params
    if params.get("dpop_jkt", proof.jkt) != proof.jkt:
        raise InvalidDPoPProof("dpop_jkt: does not match the DPoP proof's key")
    return {**params, "dpop_jkt": proof.jkt}


# Resource endpoints


def authorization_of(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """(scheme, token) of `Authorization: Bearer|DPoP <token>`, None without one."""
    values = list(request.headers.getall("authorization", []))
    if len(values) > 1:
        raise InvalidRequest("send one Authorization header")
    return presented_token({"authorization": values[0].strip()}) if values else None


def dpop_challenge(exc: OAuthError) -> DPoPChallenge:
    """A proof error as a resource endpoint answers it (§7.1, §9)."""
    headers = {k: v for k, v in exc.headers.items() if k == nonces.RESPONSE_HEADER}
    return DPoPChallenge(exc.error, exc.description, ALGS, headers)


def check_presentation(bound_jkt: str, scheme: str, proof: DPoPProof | None) -> None:
    """A token presented under `scheme` (with `proof`, checked with its `ath`) may be used."""
    if scheme == BEARER:
        if bound_jkt:
            raise DPoPChallenge(
                "invalid_token",
                "the access token is DPoP-bound: send it as Authorization: DPoP with a proof",
                ALGS,
            )
        return
    if proof is None:
        raise DPoPChallenge("invalid_dpop_proof", "Authorization: DPoP needs a DPoP proof", ALGS)
    if not bound_jkt:
        raise InvalidToken("the access token is not DPoP-bound: send it as Authorization: Bearer")
    if proof.jkt != bound_jkt:
        raise DPoPChallenge("invalid_token", "the access token is bound to another DPoP key", ALGS)
