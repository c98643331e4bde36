"""Access tokens as management API credentials (the `resolve_principal` hook).

A token authenticates a management API call when it is an active access
token of the call's instance (see `tokens.lookup`) whose audience includes
the management API, i.e. it was requested with the scope
`urn:zitadel:iam:org:project:id:zitadel:aud`, as ZITADEL's SDKs do. Tokens
of other instances never match: their keys and records are not this
instance's.

A DPoP-bound token (RFC 9449) is accepted only as `Authorization: DPoP`
with a proof of its key for this call (`htm` POST, `htu` the method's URL
under the instance's issuer, `ath` the token's hash), checked as at
userinfo (`dpop.binding`); as `Bearer` it is refused. Refusals of a token
this plugin knows are `unauthenticated` with the RFC's error code in the
message and its `WWW-Authenticate: DPoP ...` challenge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from donjon.core.api.auth import DPOP, Credential, Principal
from donjon.core.api.connect import ConnectError
from donjon.plugins.oidc.dpop.binding import check_presentation, checked_proof, dpop_challenge
from donjon.plugins.oidc.errors import InvalidDPoPProof, OAuthError, UseDPoPNonce
from donjon.plugins.oidc.issuer import issuer_for_host
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.scopes import api_audience
from donjon.plugins.oidc.tokens.lookup import active_token

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

METHOD = "access_token"


def refusal(exc: OAuthError) -> ConnectError:
    """An OAuth refusal as the management API answers it (Connect's 401, same headers)."""
    return ConnectError("unauthenticated", f"{exc.error}: {exc.description}", headers=exc.headers)


async def principal_from_access_token(
    runtime: Runtime, instance_id: str, token: str, credential: Credential
) -> Principal | None:
    provider = provider_of(runtime)
    proof = None
    if credential.scheme == DPOP:
        issuer = issuer_for_host(credential.headers.get("host", ""), runtime.settings, instance_id)
        try:
            proof = await checked_proof(
                provider,
                instance_id,
                credential.proofs,
                method=credential.method,
                uri=issuer.endpoint(credential.path),
                access_token=token,
            )
        except (InvalidDPoPProof, UseDPoPNonce) as exc:
            raise refusal(dpop_challenge(exc)) from None
    found = await active_token(provider, instance_id, token)
    if found is None or api_audience(instance_id) not in found.audience:
        return None
    try:
        check_presentation(found.dpop_jkt, credential.scheme, proof)
    except OAuthError as exc:
        raise refusal(exc) from None
    return Principal(found.user_id, found.org_id, instance_id, METHOD, found.scopes)
