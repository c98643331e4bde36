"""Auth requests (OIDC Core §3.1.2.1) as events (aggregate `auth_request`) and read model.

An auth request is what `/oauth/v2/authorize` accepted, waiting for a login:

- `auth_request.added`: the checked request (client, redirect URI, scopes,
  state, nonce, PKCE challenge, prompt, max_age, login hint, issuer);
- `auth_request.succeeded`: a login finished it with a session; carries the
  SHA-256 of the single-use authorization code and the authentication facts
  (user, auth_time, amr) the tokens will state;
- `auth_request.failed`: the login (or the user) refused it;
- `auth_request.code.exchanged`: the code was redeemed for the tokens of the
  `oidc_session` named in the event. A second redemption revokes that
  session (RFC 9700 §4.2.1) and is refused.

The inline read model `oidc_auth_requests` is what the login and the token
endpoint read; the write model `AuthRequestState` is what commands check,
so two logins racing on one request cannot both succeed (expected sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, Table, Text

from donjon.core.events import Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.sessions import parse_time
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import AggregateRows, handles, projection_metadata
from donjon.core.projections.statements import RemoveWhere

AGGREGATE = "auth_request"
ADDED, SUCCEEDED, FAILED, EXCHANGED = "added", "succeeded", "failed", "exchanged"


@dataclass(frozen=True)
class AuthRequestAdded(Event):
    TYPE = "auth_request.added"
    AGGREGATE_TYPE = AGGREGATE
    client_id: str
    app_id: str
    project_id: str
    redirect_uri: str
    # code | id_token | id_token token
    response_type: str
    # query | fragment
    response_mode: str
    issuer: str
    # RFC 3339: the login must finish before.
    expiration: str
    scopes: list[str] = field(default_factory=list)
    state: str = ""
    nonce: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""
    prompt: list[str] = field(default_factory=list)
    # Seconds; -1 when not sent.
    max_age: int = -1
    login_hint: str = ""
    ui_locales: list[str] = field(default_factory=list)
    # Pushed to /oauth/v2/par (RFC 9126): usable as request_uri for a short while.
    pushed: bool = False
    # RFC 9449 §10: the JWK thumbprint of the DPoP key the code is bound to.
    dpop_jkt: str = ""


@dataclass(frozen=True)
class AuthRequestSucceeded(Event):
    TYPE = "auth_request.succeeded"
    AGGREGATE_TYPE = AGGREGATE
    session_id: str
    user_id: str
    user_org: str
    # RFC 3339: when the user last proved who they are on the session.
    auth_time: str
    # SHA-256 of the authorization code (empty for the implicit flow).
    code_digest: str
    # RFC 3339
    code_expiration: str
    amr: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuthRequestFailed(Event):
    TYPE = "auth_request.failed"
    AGGREGATE_TYPE = AGGREGATE
    error: str
    description: str = ""


@dataclass(frozen=True)
class AuthRequestCodeExchanged(Event):
    TYPE = "auth_request.code.exchanged"
    AGGREGATE_TYPE = AGGREGATE
    # The oidc_session aggregate holding the tokens the code was exchanged for.
    oidc_session_id: str


EVENT_TYPES: list[type[Event]] = [
    AuthRequestAdded,
    AuthRequestSucceeded,
    AuthRequestFailed,
    AuthRequestCodeExchanged,
]

auth_requests_table = Table(
    "oidc_auth_requests",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("app_id", Text, nullable=False),
    Column("project_id", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("response_type", Text, nullable=False),
    Column("response_mode", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("oauth_state", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("code_challenge", Text, nullable=False),
    Column("code_challenge_method", Text, nullable=False),
    Column("prompt", JSON, nullable=False),
    Column("max_age", Integer, nullable=True),
    Column("login_hint", Text, nullable=False),
    Column("ui_locales", JSON, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("user_org", Text, nullable=False),
    Column("auth_time", UTCDateTime, nullable=True),
    Column("amr", JSON, nullable=False),
    Column("code_digest", Text, nullable=True),
    Column("code_expires_at", UTCDateTime, nullable=True),
    Column("oidc_session_id", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("dpop_jkt", Text, nullable=False),
)
Index(
    "oidc_auth_requests_code",
    auth_requests_table.c.code_digest,
    auth_requests_table.c.instance_id,
    unique=True,
)


class AuthRequestsProjection(AggregateRows):
    """`oidc_auth_requests`, written in the push transaction."""

    name = "oidc_auth_requests"
    # 2: dpop_jkt.
    version = 2
    inline = True
    tables = (auth_requests_table,)
    row_table = auth_requests_table

    @handles(AuthRequestAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        max_age = p.get("max_age", -1)
        return [
            self._new_row(
                e,
                {
                    "state": ADDED,
                    "client_id": p["client_id"],
                    "app_id": p["app_id"],
                    "project_id": p["project_id"],
                    "redirect_uri": p["redirect_uri"],
                    "response_type": p["response_type"],
                    "response_mode": p["response_mode"],
                    "issuer": p["issuer"],
                    "scopes": p.get("scopes", []),
                    "oauth_state": p.get("state", ""),
                    "nonce": p.get("nonce", ""),
                    "code_challenge": p.get("code_challenge", ""),
                    "code_challenge_method": p.get("code_challenge_method", ""),
                    "prompt": p.get("prompt", []),
                    "max_age": None if max_age < 0 else max_age,
                    "login_hint": p.get("login_hint", ""),
                    "ui_locales": p.get("ui_locales", []),
                    "dpop_jkt": p.get("dpop_jkt", ""),
                    "expires_at": parse_time(p["expiration"]),
                    "session_id": "",
                    "user_id": "",
                    "user_org": "",
                    "auth_time": None,
                    "amr": [],
                    "code_digest": None,
                    "code_expires_at": None,
                    "oidc_session_id": "",
                    "error": "",
                },
            )
        ]

    @handles(AuthRequestSucceeded.TYPE)
    def succeeded(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            self._touch(
                e,
                state=SUCCEEDED,
                session_id=p["session_id"],
                user_id=p["user_id"],
                user_org=p["user_org"],
                auth_time=parse_time(p["auth_time"]),
                amr=p.get("amr", []),
                code_digest=p["code_digest"] or None,
                code_expires_at=parse_time(p["code_expiration"]),
            )
        ]

    @handles(AuthRequestFailed.TYPE)
    def failed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=FAILED, error=e.payload["error"])]

    @handles(AuthRequestCodeExchanged.TYPE)
    def exchanged(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self._touch(e, state=EXCHANGED, oidc_session_id=e.payload["oidc_session_id"])]

    @handles("instance.removed")
    def instance_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(auth_requests_table, {"instance_id": e.aggregate_id})]


class AuthRequestState(WriteModel):
    """An auth request as its commands see it."""

    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.state = ""
        self.request: dict[str, Any] = {}
        self.expiration: datetime | None = None
        self.oidc_session_id = ""

    @property
    def exists(self) -> bool:
        return bool(self.state)

    @applies(AuthRequestAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.state = ADDED
        self.request = dict(e.payload)
        self.expiration = parse_time(e.payload["expiration"])

    @applies(AuthRequestSucceeded.TYPE)
    def on_succeeded(self, e: StoredEvent) -> None:
        self.state = SUCCEEDED

    @applies(AuthRequestFailed.TYPE)
    def on_failed(self, e: StoredEvent) -> None:
        self.state = FAILED

    @applies(AuthRequestCodeExchanged.TYPE)
    def on_exchanged(self, e: StoredEvent) -> None:
        self.state = EXCHANGED
        self.oidc_session_id = e.payload["oidc_session_id"]
