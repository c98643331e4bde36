"""Pushed authorization requests (RFC 9126).

A client pushes its authorization parameters to `/oauth/v2/par`, over the
back channel and authenticated, and gets a `request_uri`
(`urn:ietf:params:oauth:request_uri:<id>`); the browser then brings only
`client_id` and `request_uri` to `/oauth/v2/authorize`. The pushed
parameters pass the same checks as a front-channel request
(`authorize_request`) and are stored as an auth request marked `pushed`; at
`/authorize` the `request_uri` must name such a request of the same client,
still pending, pushed less than `PushedRequestLifetime` ago. Any other
parameter sent with `request_uri` is ignored, as RFC 9126 §4 says. With
`RequirePushedAuthorizationRequests` every authorization request must be pushed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from donjon.core.identity import apps
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_request_events import ADDED, AuthRequestState
from donjon.plugins.oidc.authorize_request import NotRedirectable, check_client_and_redirect
from donjon.plugins.oidc.clients import Client
from donjon.plugins.oidc.errors import InvalidRequest, UnauthorizedClient
from donjon.plugins.oidc.provider import provider_of

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: Client authentication parameters: not authorization parameters.
CLIENT_AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")


def pushed_params(client: Client, form: dict[str, str]) -> dict[str, str]:
    """The authorization parameters of a push, for the authenticated `client`."""
    if client.is_machine or client.app_kind != apps.OIDC:
        raise UnauthorizedClient("pushed authorization requests are for OIDC applications")
    if form.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequest("client_id: does not match the authenticated client")
    if "request_uri" in form:
        raise InvalidRequest("request_uri: must not be pushed")
    params = {k: v for k, v in form.items() if k not in CLIENT_AUTH_PARAMS}
    params["client_id"] = client.client_id
    return params


async def pushed_request(
    runtime: Runtime, instance_id: str, params: dict[str, str]
) -> tuple[str, dict[str, object]]:
    """(auth request id, app) named by `request_uri`; NotRedirectable when it is not a
    pending pushed request of `client_id` young enough to use."""
    request_uri = params.get("request_uri", "")
    client_id = params.get("client_id", "")
    if not client_id:
        raise NotRedirectable("client_id: required")
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise NotRedirectable("request_uri: not a request_uri of this server")
    auth_request_id = request_uri.removeprefix(REQUEST_URI_PREFIX)
    state = await AuthRequestState.load(runtime.store, instance_id, auth_request_id)
    lifetime = provider_of(runtime).settings.PushedRequestLifetime
    if (
        state.state != ADDED
        or not state.request.get("pushed")
        or state.request.get("client_id") != client_id
        or state.created_at is None
        or state.created_at + lifetime <= datetime.now(UTC)
    ):
        raise NotRedirectable("request_uri: unknown, used or expired")
    async with runtime.db.read() as conn:
        app, _uri = await check_client_and_redirect(
            conn,
            instance_id,
            {"client_id": client_id, "redirect_uri": str(state.request["redirect_uri"])},
        )
    return auth_request_id, app
