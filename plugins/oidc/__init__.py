"""The OpenID Connect / OAuth 2.0 provider (built-in plugin `oidc`): hook implementations only.

See docs/oidc.md. The protocol lives in the modules beside this one, one per
specification feature: `grants/` (one module per grant), `client_auth`,
`assertion` (RFC 7523), `keys/` (web keys and the JWKS), `tokens/`,
`endpoints/` (one module per endpoint), `scopes`, `claims`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.core import hookimpl

if TYPE_CHECKING:
    from donjon.core.api.auth import Credential, Principal
    from donjon.core.events import Event
    from donjon.core.plugins import SettingsSection
    from donjon.core.projections.base import Projection
    from donjon.core.runtime import Runtime
    from donjon.core.setup.migrations import Migration


@hookimpl
def register_event_types() -> list[type[Event]]:
    from donjon.plugins.oidc import auth_request_events as auth_requests
    from donjon.plugins.oidc import device_events as devices
    from donjon.plugins.oidc import impersonation
    from donjon.plugins.oidc.keys import events as web_keys
    from donjon.plugins.oidc.tokens import events as tokens
    from donjon.plugins.oidc.tokens import refresh

    return [
        *web_keys.EVENT_TYPES,
        *tokens.EVENT_TYPES,
        *refresh.EVENT_TYPES,
        *auth_requests.EVENT_TYPES,
        *devices.EVENT_TYPES,
        *impersonation.EVENT_TYPES,
    ]


@hookimpl
def register_settings() -> list[SettingsSection]:
    from donjon.core.plugins import SettingsSection
    from donjon.plugins.oidc.settings import NAME, OIDCSettings

    return [SettingsSection(NAME, OIDCSettings)]


@hookimpl
def register_projections() -> list[Projection]:
    from donjon.plugins.oidc.auth_request_events import AuthRequestsProjection
    from donjon.plugins.oidc.device_events import DeviceAuthsProjection
    from donjon.plugins.oidc.keys.events import WebKeysProjection
    from donjon.plugins.oidc.tokens.events import AccessTokensProjection
    from donjon.plugins.oidc.tokens.refresh import RefreshTokensProjection

    return [
        WebKeysProjection(),
        AccessTokensProjection(),
        AuthRequestsProjection(),
        RefreshTokensProjection(),
        DeviceAuthsProjection(),
    ]


@hookimpl
def register_api_services() -> list[Any]:
    from donjon.plugins.oidc import oidc_service, web_key_service

    return [oidc_service.service, web_key_service.service]


@hookimpl
def register_migrations() -> list[Migration]:
    from donjon.plugins.oidc.setup import MIGRATIONS

    return list(MIGRATIONS)


@hookimpl
def register_routes() -> list[Any]:
    from donjon.plugins.oidc.endpoints import ROUTES

    return list(ROUTES)


@hookimpl
def on_startup(runtime: Runtime) -> None:
    """Start this process's purge of expired auth requests, codes and tokens."""
    import asyncio

    from donjon.plugins.oidc.provider import provider_of
    from donjon.plugins.oidc.purge import purge_periodically

    provider = provider_of(runtime)
    if provider.purge_task is None or provider.purge_task.done():
        provider.purge_task = asyncio.get_running_loop().create_task(
            purge_periodically(runtime), name="oidc purge"
        )


@hookimpl
async def on_shutdown(runtime: Runtime) -> None:
    """Stop the purge job."""
    import asyncio
    import contextlib

    from donjon.plugins.oidc.provider import provider_of

    provider = provider_of(runtime)
    task, provider.purge_task = provider.purge_task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@hookimpl
async def resolve_principal(
    token: str, instance_id: str, runtime: Runtime, credential: Credential
) -> Principal | None:
    """An access token of this instance whose audience includes the management API
    (a DPoP-bound one as `Authorization: DPoP` with a proof of its key)."""
    from donjon.plugins.oidc.principal import principal_from_access_token

    return await principal_from_access_token(runtime, instance_id, token, credential)
