"""The JWK Set (RFC 7517): `GET /oauth/v2/keys`, the instance's published web keys.

Served with `Cache-Control: public, max-age=<JwksCacheMaxAge>`; the key
ring never activates a key that has been published for less than that.
The first request for an instance creates its keys.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from donjon.core.runtime import Runtime
from donjon.plugins.oidc.issuer import KEYS_PATH
from donjon.plugins.oidc.provider import provider_of


@get(KEYS_PATH)
async def jwks(
    runtime: NamedDependency[Runtime], instance_id: NamedDependency[str]
) -> Response[dict[str, Any]]:
    provider = provider_of(runtime)
    max_age = int(provider.settings.JwksCacheMaxAge.total_seconds())
    return Response(
        await provider.keys.jwks(instance_id),
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )
