"""The implicit flow (OIDC Core §3.2): tokens in the redirect URI's fragment.

Only for apps registered with the implicit grant and an `id_token` response
type (RFC 9700 §2.1.2 advises against it; `/authorize` refuses it to every
other app). `id_token` gives an ID token only; `id_token token` an access
token too (the ID token then carries `at_hash`). `nonce` is required
(checked at `/authorize`). No refresh token is ever issued here. Finishing
pushes `auth_request.succeeded` (without a code) and the tokens'
`oidc_session` in one push, with the auth request's expected sequence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from donjon.core import ids
from donjon.core.api.connect import ConnectError
from donjon.core.errors import ConcurrencyError
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity.sessions import format_time
from donjon.core.runtime import Runtime
from donjon.plugins.oidc.auth_request_events import AuthRequestState, AuthRequestSucceeded
from donjon.plugins.oidc.claims import load_user
from donjon.plugins.oidc.errors import OAuthError
from donjon.plugins.oidc.issuer import Issuer
from donjon.plugins.oidc.login_checks import Login
from donjon.plugins.oidc.login_tokens import LoginFacts, app_scope, login_token_set
from donjon.plugins.oidc.provider import provider_of
from donjon.plugins.oidc.tokens.events import AGGREGATE

GRANT_TYPE = "implicit"


async def finish_implicit(
    runtime: Runtime, pending: AuthRequestState, app: dict[str, Any], login: Login
) -> str:
    """Issue the tokens of an implicit request; the redirect URI with them in the fragment."""
    from donjon.plugins.oidc.auth_requests import redirect_with

    req = pending.request
    provider = provider_of(runtime)
    issuer = Issuer(pending.instance_id, req["issuer"])
    async with runtime.db.read() as conn:
        user = await load_user(conn, pending.instance_id, login.user_id)
        assert user is not None  # checked by login_checks
        try:
            scope, _refresh = await app_scope(
                conn, pending.instance_id, app, user, list(req["scopes"])
            )
        except OAuthError as exc:
            raise ConnectError("failed_precondition", f"authRequestId: {exc.description}") from None
        tokens = await login_token_set(
            provider,
            issuer,
            conn,
            app=app,
            user=user,
            scope=scope,
            facts=LoginFacts(login.session_id, login.auth_time, login.amr, req.get("nonce", "")),
            grant_type=GRANT_TYPE,
            refresh=False,
            access_token=req["response_type"] == "id_token token",
        )
    now = format_time(datetime.now(UTC))
    succeeded = AuthRequestSucceeded(
        session_id=login.session_id,
        user_id=login.user_id,
        user_org=login.user_org,
        auth_time=format_time(login.auth_time),
        code_digest="",
        code_expiration=now,
        amr=login.amr,
    )
    changes = [
        AggregateChanges(pending.aggregate(), [succeeded], expected_sequence=pending.sequence)
    ]
    if tokens.events:
        session = Aggregate(AGGREGATE, ids.new_id(), pending.instance_id, user["resource_owner"])
        changes.append(AggregateChanges(session, tokens.events, expected_sequence=0))
    try:
        await runtime.store.push(changes, creator=login.user_id)
    except ConcurrencyError:
        raise ConnectError(
            "failed_precondition", "authRequestId: the auth request is finished"
        ) from None
    fragment = {k: str(v) for k, v in tokens.response.items()}
    if "access_token" not in fragment:
        fragment.pop("token_type", None)
    return redirect_with(
        req["redirect_uri"],
        "fragment",
        {**fragment, "state": req.get("state", ""), "iss": req["issuer"]},
    )
