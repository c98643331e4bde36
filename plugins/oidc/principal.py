"""Access tokens as management API credentials (the `resolve_principal` hook).

A token authenticates a management API call when it is an active access
token of the call's instance (see `tokens.lookup`) whose audience includes
the management API, i.e. it was requested with the scope
`urn:zitadel:iam:org:project:id:zitadel:aud`, as ZITADEL's SDKs do. Tokens
of other instances never match: their keys and records are not this
instance's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from donjon.core.api.auth import Principal
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.scopes import api_audience
from donjon.plugins.oidc.tokens.lookup import active_token

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

METHOD = "access_token"


async def principal_from_access_token(
    runtime: Runtime, instance_id: str, token: str
) -> Principal | None:
    found = await active_token(provider_of(runtime), instance_id, token)
    if found is None or api_audience(instance_id) not in found.audience:
        return None
    if found.dpop_jkt:
        # RFC 9449 §7.2: a DPoP-bound token is no bearer token.
        return None
    return Principal(found.user_id, found.org_id, instance_id, METHOD, found.scopes)
