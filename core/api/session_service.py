"""zitadel.session.v2.SessionService: create, update, read, list and delete sessions.

A custom login UI (or the hosted login) creates a session, checks the user
and its factors on it, and uses the returned session token: to finish an
OIDC auth request, or as a Bearer token against this API. See
`donjon.core.identity.sessions` for the model and `session_checks` for the
checks.

Permissions: CreateSession needs `session.write` (IAM_LOGIN_CLIENT and
IAM_OWNER hold `session.*`). SetSession needs the current session token or
`session.write`; GetSession the token, or `session.read`, or being the
session's user or creator; DeleteSession the token, or `session.delete`, or
being the session's user. ListSessions lists what the caller may read
(`session.read`) plus the sessions it created or that are its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    details,
    invalid,
    list_details,
    parse_timestamp,
    timestamp,
)
from donjon.core.api.queries import (
    ListQuery,
    ordering,
    paging,
    read_page,
    sort_column,
)
from donjon.core.identity import secrets, session_commands
from donjon.core.identity.session_commands import SessionChanges, SessionResult
from donjon.core.identity.sessions import FACTOR_EVENTS, SessionState, sessions_table
from donjon.core.identity.user_reads import login_domains, login_names
from donjon.core.identity.users import users_table

service = Service("zitadel.session.v2.SessionService")


# -- messages ----------------------------------------------------------------------------


class CheckUser(Message):
    user_id: str | None = None
    login_name: str | None = None


class CheckPassword(Message):
    password: str | None = None


class Checks(Message):
    user: CheckUser | None = None
    password: CheckPassword | None = None
    # Run by plugins' checks (`register_session_checks`), as sent.
    web_auth_n: dict[str, Any] | None = None
    idp_intent: dict[str, Any] | None = None
    totp: dict[str, Any] | None = None
    otp_sms: dict[str, Any] | None = None
    otp_email: dict[str, Any] | None = None
    recovery_code: dict[str, Any] | None = None


class RequestChallenges(Message):
    web_auth_n: dict[str, Any] | None = None
    otp_sms: dict[str, Any] | None = None
    otp_email: dict[str, Any] | None = None


class HeaderValues(Message):
    values: list[str] = []


class UserAgent(Message):
    fingerprint_id: str | None = None
    ip: str | None = None
    description: str | None = None
    header: dict[str, HeaderValues] = {}


class CreateSessionRequest(Message):
    checks: Checks | None = None
    metadata: dict[str, bytes] = {}
    challenges: RequestChallenges | None = None
    user_agent: UserAgent | None = None
    lifetime: str | None = None


class SetSessionRequest(Message):
    session_id: str = ""
    session_token: str | None = None
    checks: Checks | None = None
    metadata: dict[str, bytes] = {}
    challenges: RequestChallenges | None = None
    lifetime: str | None = None


class SessionRequest(Message):
    session_id: str = ""
    session_token: str | None = None


class IDsQuery(Message):
    ids: list[str] = []


class IDQuery(Message):
    id: str | None = None


class CreationDateQuery(Message):
    creation_date: str | None = None
    method: str | None = None


class ExpirationDateQuery(Message):
    expiration_date: str | None = None
    method: str | None = None


class UserAgentQuery(Message):
    fingerprint_id: str | None = None


class SearchQuery(Message):
    ids_query: IDsQuery | None = None
    user_id_query: IDQuery | None = None
    creation_date_query: CreationDateQuery | None = None
    creator_query: IDQuery | None = None
    user_agent_query: UserAgentQuery | None = None
    expiration_date_query: ExpirationDateQuery | None = None


class ListSessionsRequest(Message):
    query: ListQuery | None = None
    queries: list[SearchQuery] = []
    sorting_column: str | None = None


class Details(Message):
    sequence: str | None = None
    change_date: str | None = None
    resource_owner: str | None = None


class CreateSessionResponse(Message):
    details: Details | None = None
    session_id: str = ""
    session_token: str = ""
    challenges: dict[str, Any] | None = None


class SetSessionResponse(Message):
    details: Details | None = None
    session_token: str = ""
    challenges: dict[str, Any] | None = None


# -- helpers -----------------------------------------------------------------------------


def _changes(
    checks: Checks | None,
    challenges: RequestChallenges | None,
    metadata: dict[str, bytes],
    lifetime: str | None,
) -> SessionChanges:
    return SessionChanges(
        checks=msgspec.to_builtins(checks) if checks is not None else {},
        challenges=msgspec.to_builtins(challenges) if challenges is not None else {},
        metadata=metadata,
        lifetime=session_commands.parse_lifetime("lifetime", lifetime),
    )


def _answer(result: SessionResult) -> dict[str, Any]:
    out: dict[str, Any] = {"details": details(result.events), "sessionToken": result.token}
    if result.challenges:
        out["challenges"] = result.challenges
    return out


@dataclass(frozen=True)
class Access:
    """Who may act on a session besides holders of the permission."""

    user_id: str
    creator: str
    user_org: str
    token_digest: str

    @classmethod
    def of_state(cls, state: SessionState) -> Access:
        return cls(state.user_id, state.creator, state.user_org, state.token_digest)


async def _authorize(call: Call, access: Access, token: str | None, permission: str) -> None:
    """Allow the call with the session's current token; else with the permission on
    the org of the session's user (instance-wide for a session without user); else
    for the session's own user (reading and deleting) and its creator (reading).
    A token that is sent must be the current one, whatever the caller's roles."""
    token = (token or "").strip()
    if token:
        if not access.token_digest or not secrets.matches(token, access.token_digest):
            raise ConnectError("permission_denied", "sessionToken: does not match the session")
        return
    me = call.user_id
    if me and permission in ("session.read", "session.delete") and me == access.user_id:
        return
    if me and permission == "session.read" and me == access.creator:
        return
    await call.require(permission, org_id=access.user_org or None)


def session_message(row: Any, domains: tuple[str, list[str]]) -> dict[str, Any]:
    """The `Session` message of a `sessions` row joined with its user."""
    factors: dict[str, Any] = {}
    if row.user_id and row.user_checked_at is not None:
        _names, preferred = login_names(row.username or "", domains)
        factors["user"] = {
            "verifiedAt": timestamp(row.user_checked_at),
            "id": row.user_id,
            "loginName": preferred,
            "displayName": row.display_name or "",
            "organizationId": row.user_resource_owner,
        }
    for name, (_event, column) in FACTOR_EVENTS.items():
        verified = getattr(row, column)
        if verified is None:
            continue
        factors[name] = {"verifiedAt": timestamp(verified)}
        if name == "webAuthN":
            factors[name]["userVerified"] = bool(row.webauthn_user_verified)
    out: dict[str, Any] = {
        "id": row.id,
        "creationDate": timestamp(row.created_at),
        "changeDate": timestamp(row.changed_at),
        "sequence": str(row.sequence),
        "factors": factors,
        "metadata": dict(row.metadata or {}),
    }
    agent: dict[str, Any] = {}
    if row.user_agent_fingerprint_id:
        agent["fingerprintId"] = row.user_agent_fingerprint_id
    if row.user_agent_ip:
        agent["ip"] = row.user_agent_ip
    if row.user_agent_description:
        agent["description"] = row.user_agent_description
    if row.user_agent_header:
        agent["header"] = {k: {"values": v} for k, v in row.user_agent_header.items()}
    if agent:
        out["userAgent"] = agent
    if row.expiration is not None:
        out["expirationDate"] = timestamp(row.expiration)
    return out


def _select() -> Any:
    s, u = sessions_table, users_table
    return select(s, u.c.username, u.c.display_name).outerjoin(
        u, (u.c.instance_id == s.c.instance_id) & (u.c.id == s.c.user_id)
    )


async def _messages(call: Call, rows: list[Any]) -> list[dict[str, Any]]:
    async with call.runtime.db.read() as conn:
        domains = await login_domains(
            conn, call.instance_id, {r.user_resource_owner for r in rows if r.user_resource_owner}
        )
    return [session_message(r, domains.get(r.user_resource_owner, ("", []))) for r in rows]


# -- methods -----------------------------------------------------------------------------


@service.rpc("CreateSession", request=CreateSessionRequest, response=CreateSessionResponse)
async def create_session(call: Call, req: CreateSessionRequest) -> dict[str, Any]:
    """Create a session, running its checks; returns the session token."""
    await call.require("session.write")
    changes = _changes(req.checks, req.challenges, req.metadata, req.lifetime)
    agent: dict[str, Any] = {}
    if req.user_agent is not None:
        ua = req.user_agent
        agent = session_commands.user_agent(
            ua.fingerprint_id or "",
            ua.ip or "",
            ua.description or "",
            {name: h.values for name, h in ua.header.items()},
        )
    result = await session_commands.create_session(
        call.runtime, call.instance_id, changes, agent=agent, creator=call.user_id
    )
    return {"sessionId": result.session_id, **_answer(result)}


@service.rpc("SetSession", request=SetSessionRequest, response=SetSessionResponse)
async def set_session(call: Call, req: SetSessionRequest) -> dict[str, Any]:
    """Run further checks on a session, change its metadata or lifetime; rotates the token."""
    state = await session_commands.live_session(call.runtime, call.instance_id, req.session_id)
    await _authorize(call, Access.of_state(state), req.session_token, "session.write")
    changes = _changes(req.checks, req.challenges, req.metadata, req.lifetime)
    result = await session_commands.set_session(call.runtime, state, changes, creator=call.user_id)
    return _answer(result)


@service.rpc("GetSession", request=SessionRequest)
async def get_session_by_id(call: Call, req: SessionRequest) -> dict[str, Any]:
    """Read a session with its factors (with its token, or as a reader of sessions)."""
    if not req.session_id:
        raise invalid("sessionId", "is required")
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                _select().where(
                    sessions_table.c.instance_id == call.instance_id,
                    sessions_table.c.id == req.session_id,
                )
            )
        ).first()
    if row is None:
        raise ConnectError("not_found", "sessionId: session not found")
    access = Access(row.user_id, row.creator, row.user_resource_owner, row.token_digest)
    await _authorize(call, access, req.session_token, "session.read")
    return {"session": (await _messages(call, [row]))[0]}


@service.rpc("DeleteSession", request=SessionRequest)
async def delete_session(call: Call, req: SessionRequest) -> dict[str, Any]:
    """Terminate a session: its token stops working. Deleting it again is no error."""
    if not req.session_id:
        raise invalid("sessionId", "is required")
    state = await SessionState.load(call.runtime.store, call.instance_id, req.session_id)
    if not state.state:
        raise ConnectError("not_found", "sessionId: session not found")
    await _authorize(call, Access.of_state(state), req.session_token, "session.delete")
    if not state.exists:
        return {
            "details": details(
                sequence=state.sequence, changed_at=state.changed_at, owner=state.owner
            )
        }
    stored = await session_commands.terminate_session(call.runtime, state, creator=call.user_id)
    return {"details": details(stored)}


# -- ListSessions ------------------------------------------------------------------------

TIMESTAMP_METHODS = {
    None: "eq",
    "TIMESTAMP_QUERY_METHOD_EQUALS": "eq",
    "TIMESTAMP_QUERY_METHOD_GREATER": "gt",
    "TIMESTAMP_QUERY_METHOD_GREATER_OR_EQUALS": "ge",
    "TIMESTAMP_QUERY_METHOD_LESS": "lt",
    "TIMESTAMP_QUERY_METHOD_LESS_OR_EQUALS": "le",
}


def _time_condition(column: Any, query: str, value: str | None, method: str | None) -> Any:
    """`column` compared with the query's timestamp; `query` is the query's JSON path."""
    name = "creationDate" if query.endswith("creationDateQuery") else "expirationDate"
    when: datetime | None = parse_timestamp(f"{query}.{name}", value)
    if when is None:
        raise invalid(f"{query}.{name}", "is required")
    op = TIMESTAMP_METHODS.get(method)
    if op is None:
        raise invalid(f"{query}.method", f"unknown method {method!r}")
    return {
        "eq": column == when,
        "gt": column > when,
        "ge": column >= when,
        "lt": column < when,
        "le": column <= when,
    }[op]


def _search_condition(call: Call, q: SearchQuery, i: int) -> Any:
    s = sessions_table
    at = f"queries.{i}"
    if q.ids_query is not None:
        return s.c.id.in_(q.ids_query.ids)
    if q.user_id_query is not None:
        if not q.user_id_query.id:
            raise invalid(f"{at}.userIdQuery.id", "is required")
        return s.c.user_id == q.user_id_query.id
    if q.creation_date_query is not None:
        c = q.creation_date_query
        return _time_condition(s.c.created_at, f"{at}.creationDateQuery", c.creation_date, c.method)
    if q.creator_query is not None:
        # No id: the caller's own sessions, as ZITADEL reads it.
        return s.c.creator == (q.creator_query.id or call.user_id)
    if q.user_agent_query is not None:
        if not q.user_agent_query.fingerprint_id:
            raise invalid(f"{at}.userAgentQuery.fingerprintId", "is required")
        return s.c.user_agent_fingerprint_id == q.user_agent_query.fingerprint_id
    if q.expiration_date_query is not None:
        c = q.expiration_date_query
        cond = _time_condition(
            s.c.expiration, f"{at}.expirationDateQuery", c.expiration_date, c.method
        )
        if TIMESTAMP_METHODS.get(c.method) in ("gt", "ge"):
            # A session without expiration never expires: later than any date.
            cond = or_(cond, s.c.expiration.is_(None))
        return cond
    raise invalid(
        at,
        "set one of idsQuery, userIdQuery, creationDateQuery, creatorQuery, userAgentQuery,"
        " expirationDateQuery",
    )


@service.rpc("ListSessions", request=ListSessionsRequest)
async def list_sessions(call: Call, req: ListSessionsRequest) -> dict[str, Any]:
    """Search the sessions the caller may read, its own and those it created."""
    offset, limit, asc = paging(req.query)
    s = sessions_table
    sorts = {
        None: s.c.created_at,
        "SESSION_FIELD_NAME_UNSPECIFIED": s.c.created_at,
        "SESSION_FIELD_NAME_CREATION_DATE": s.c.created_at,
    }
    sort = sort_column(sorts, req.sorting_column)
    conditions: list[Any] = [s.c.instance_id == call.instance_id]
    conditions += [_search_condition(call, q, i) for i, q in enumerate(req.queries)]
    visible = await call.visible_orgs("session.read")
    if visible is not None:
        conditions.append(
            or_(
                s.c.user_resource_owner.in_(visible) if visible else or_(False),
                and_(s.c.user_id != "", s.c.user_id == call.user_id),
                s.c.creator == call.user_id,
            )
        )
    order = ordering(asc, sort, s.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, s, conditions, order, offset, limit, _select())
    return {"details": list_details(total), "sessions": await _messages(call, list(rows))}
