"""The device code grant (RFC 8628 §3.4, `urn:ietf:params:oauth:grant-type:device_code`).

The device polls with its `device_code`, authenticating as registered.
Answers, per §3.5: `authorization_pending` until the person approves,
`slow_down` when it polls faster than the interval (remembered per process),
`access_denied` when they refused, `expired_token` after the lifetime; once
approved, the tokens (as after a login: see `login_tokens`), exactly once
(`device_auth.done` with the request's expected sequence, in the same push
as the tokens). A device code of another client is `invalid_grant`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select

from donjon.core import ids
from donjon.core.errors import ConcurrencyError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import secrets
from donjon.plugins.oidc.device_events import (
    APPROVED,
    DENIED,
    PENDING,
    DeviceAuthDone,
    DeviceAuthState,
    device_auths_table,
)
from donjon.plugins.oidc.errors import InvalidGrant, InvalidRequest, OAuthError
from donjon.plugins.oidc.grants.authorization_code import (
    APP_METHODS,
    approved_login_tokens,
    check_app_client,
)
from donjon.plugins.oidc.grants.base import Grant
from donjon.plugins.oidc.login_tokens import LoginFacts
from donjon.plugins.oidc.tokens.events import AGGREGATE

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client


class AuthorizationPending(OAuthError):
    error = "authorization_pending"


class SlowDown(OAuthError):
    error = "slow_down"


class AccessDenied(OAuthError):
    error = "access_denied"


class ExpiredToken(OAuthError):
    error = "expired_token"


class DeviceCodeGrant(Grant):
    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
    CLIENT_AUTH_METHODS = APP_METHODS
    #: The app setting's name for this grant.
    APP_GRANT: ClassVar[str] = "device_code"
    #: device id -> monotonic time of its last poll (per process).
    _last_poll: ClassVar[dict[str, float]] = {}

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        assert client is not None
        check_app_client(client, self.APP_GRANT)
        device_code = form.get("device_code")
        if not device_code:
            raise InvalidRequest("device_code: required")
        instance_id = self.issuer.instance_id
        d = device_auths_table
        async with self.provider.runtime.db.read() as conn:
            row = (
                await conn.execute(
                    select(d).where(
                        d.c.instance_id == instance_id,
                        d.c.device_code_digest == secrets.digest(device_code[:512]),
                    )
                )
            ).first()
        if row is None or row.client_id != client.client_id:
            raise InvalidGrant("the device code is invalid")
        if row.state == DENIED:
            raise AccessDenied("the request was denied")
        if row.state not in (PENDING, APPROVED):
            raise InvalidGrant("the device code was used")
        if row.expires_at.timestamp() <= time.time():
            raise ExpiredToken("the device code expired")
        if row.state == PENDING:
            now = time.monotonic()
            last = self._last_poll.get(row.id)
            self._last_poll[row.id] = now
            if last is not None and now - last < row.interval:
                raise SlowDown(f"poll at most every {row.interval} seconds")
            raise AuthorizationPending("the person has not approved yet")
        self._last_poll.pop(row.id, None)
        return await self._issue(dict(row._mapping), client)

    async def _issue(self, row: dict[str, Any], client: Client) -> dict[str, Any]:
        instance_id = self.issuer.instance_id
        facts = LoginFacts(row["session_id"], row["auth_time"], list(row["amr"]))
        user, tokens = await approved_login_tokens(self, client, row, facts)
        state = await DeviceAuthState.load(self.provider.runtime.store, instance_id, row["id"])
        session_id = ids.new_id()
        session = Aggregate(AGGREGATE, session_id, instance_id, user["resource_owner"])
        try:
            if state.state != APPROVED:
                raise ConcurrencyError("the device code was used meanwhile")
            await self.provider.runtime.store.push(
                [
                    AggregateChanges(
                        state.aggregate(),
                        [DeviceAuthDone(oidc_session_id=session_id)],
                        expected_sequence=state.sequence,
                    ),
                    AggregateChanges(session, tokens.events, expected_sequence=0),
                ],
                creator=user["id"],
            )
        except ConcurrencyError:
            raise InvalidGrant("the device code was used") from None
        return tokens.response
