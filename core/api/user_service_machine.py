"""UserService: machine users' credentials — personal access tokens, keys, the client secret.

Tokens and secrets are 256-bit random values (`secrets.new_secret`) stored as
SHA-256 digests and returned once. Keys are public keys for the JWT profile
grant: uploaded (`publicKey`, PEM) or generated, in which case the private
key comes back once as a ZITADEL key file in `keyContent`.

Adding or removing a credential needs `user.write` on the user's org (a
machine cannot mint itself new credentials with a stolen token); listing
needs `user.read` there, or is of one's own.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, literal, or_, select

from donjon.core import ids
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    invalid,
    parse_timestamp,
    timestamp,
)
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
)
from donjon.core.api.user_service_shared import (
    authorized_user,
    precondition,
    service,
)
from donjon.core.events import Event
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity import secrets
from donjon.core.identity import user_commands as cmd
from donjon.core.identity import user_events as ev
from donjon.core.identity import user_keys as keys
from donjon.core.identity.users import (
    PersonalAccessTokenAdded,
    PersonalAccessTokenRemoved,
    UserState,
    personal_access_tokens_table,
    users_table,
)

NEVER = datetime(9999, 1, 1, tzinfo=UTC)


async def machine(call: Call, user_id: str) -> UserState:
    """A machine user the caller may give credentials to."""
    state = await authorized_user(call, user_id, "user.write")
    try:
        cmd.require_machine(state)
    except cmd.Precondition as exc:
        raise precondition(exc) from None
    return state


def expiration(value: str | None, field_name: str = "expirationDate") -> str:
    """An optional future expiration as stored (RFC 3339, '' for never)."""
    parsed = parse_timestamp(field_name, value)
    if parsed is None:
        return ""
    if parsed <= datetime.now(UTC):
        raise invalid(field_name, "must be in the future")
    return timestamp(parsed) or ""


def key_pair(public_key: bytes | None) -> tuple[str, str | None]:
    """(public PEM, private PEM): the `publicKey` sent, checked, with no private key; or a
    generated pair when none was sent."""
    if public_key:
        try:
            return keys.check_public_key(public_key), None
        except ValueError as exc:
            raise invalid("publicKey", str(exc)) from None
    private_pem, public_pem = keys.generate_key()
    return public_pem, private_pem


async def push(call: Call, state: UserState, events: list[Event]) -> datetime:
    stored = await call.runtime.store.push(cmd.change(state, events), creator=call.user_id)
    return stored[-1].created_at


# -- personal access tokens -----------------------------------------------------------------


class AddPersonalAccessTokenRequest(Message):
    user_id: str = ""
    expiration_date: str | None = None


class RemovePersonalAccessTokenRequest(Message):
    user_id: str = ""
    token_id: str = ""


@service.rpc("AddPersonalAccessToken", request=AddPersonalAccessTokenRequest)
async def add_personal_access_token(
    call: Call, req: AddPersonalAccessTokenRequest
) -> dict[str, Any]:
    """Make a personal access token for a machine user; the token is returned only now."""
    state = await machine(call, req.user_id)
    expires = expiration(req.expiration_date)
    token, token_id = secrets.new_secret(), ids.new_id()
    created = await push(
        call,
        state,
        [
            PersonalAccessTokenAdded(
                token_id=token_id, digest=secrets.digest(token), expiration=expires
            )
        ],
    )
    return {"creationDate": timestamp(created), "tokenId": token_id, "token": token}


@service.rpc("RemovePersonalAccessToken", request=RemovePersonalAccessTokenRequest)
async def remove_personal_access_token(
    call: Call, req: RemovePersonalAccessTokenRequest
) -> dict[str, Any]:
    """Revoke a personal access token."""
    state = await machine(call, req.user_id)
    if not req.token_id:
        raise invalid("tokenId", "is required")
    if req.token_id not in state.pats:
        raise ConnectError("not_found", "personal access token not found")
    removed = await push(call, state, [PersonalAccessTokenRemoved(token_id=req.token_id)])
    return {"deletionDate": timestamp(removed)}


# -- keys ----------------------------------------------------------------------------------------


class AddKeyRequest(Message):
    user_id: str = ""
    expiration_date: str | None = None
    public_key: bytes | None = None


class RemoveKeyRequest(Message):
    user_id: str = ""
    key_id: str = ""


@service.rpc("AddKey", request=AddKeyRequest)
async def add_key(call: Call, req: AddKeyRequest) -> dict[str, Any]:
    """Add a key for the JWT profile grant: the `publicKey` sent, or a generated key pair."""
    state = await machine(call, req.user_id)
    expires = expiration(req.expiration_date)
    key_id = ids.new_id()
    public_pem, private_pem = key_pair(req.public_key)
    content = None
    if private_pem is not None:
        content = keys.key_file(key_id, state.id, private_pem, expires)
    created = await push(
        call,
        state,
        [keys.MachineKeyAdded(key_id=key_id, public_key=public_pem, expiration=expires)],
    )
    out: dict[str, Any] = {"creationDate": timestamp(created), "keyId": key_id}
    if content is not None:
        out["keyContent"] = base64.b64encode(content).decode()
    return out


@service.rpc("RemoveKey", request=RemoveKeyRequest)
async def remove_key(call: Call, req: RemoveKeyRequest) -> dict[str, Any]:
    """Remove a machine user's key: JWTs signed with it are refused from now on."""
    state = await machine(call, req.user_id)
    if not req.key_id:
        raise invalid("keyId", "is required")
    if req.key_id not in state.keys:
        raise ConnectError("not_found", "key not found")
    removed = await push(call, state, [keys.MachineKeyRemoved(key_id=req.key_id)])
    return {"deletionDate": timestamp(removed)}


# -- client secret --------------------------------------------------------------------------


class UserIDRequest(Message):
    user_id: str = ""


@service.rpc("AddSecret", request=UserIDRequest)
async def add_secret(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Make (or replace) a machine user's client secret; it is returned only now."""
    state = await machine(call, req.user_id)
    secret = secrets.new_secret()
    created = await push(call, state, [ev.MachineSecretSet(digest=secrets.digest(secret))])
    return {"creationDate": timestamp(created), "clientSecret": secret}


@service.rpc("RemoveSecret", request=UserIDRequest)
async def remove_secret(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Remove a machine user's client secret."""
    state = await machine(call, req.user_id)
    if not state.has_secret:
        raise ConnectError("failed_precondition", "the user has no secret")
    removed = await push(call, state, [ev.MachineSecretRemoved()])
    return {"deletionDate": timestamp(removed)}


# -- lists --------------------------------------------------------------------------------


class IDFilter(Message):
    id: str = ""


class TimestampFilter(Message):
    timestamp: str | None = None
    method: str | None = None


class CredentialFilter(Message):
    """A filter of ListPersonalAccessTokens or ListKeys: exactly one field set."""

    created_date_filter: TimestampFilter | None = None
    expiration_date_filter: TimestampFilter | None = None
    organization_id_filter: IDFilter | None = None
    user_id_filter: IDFilter | None = None
    token_id_filter: IDFilter | None = None
    key_id_filter: IDFilter | None = None


class ListCredentialsRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[CredentialFilter] = []


TIMESTAMP_METHODS = {
    None: "__eq__",
    "TIMESTAMP_FILTER_METHOD_EQUALS": "__eq__",
    "TIMESTAMP_FILTER_METHOD_AFTER": "__gt__",
    "TIMESTAMP_FILTER_METHOD_AFTER_OR_EQUALS": "__ge__",
    "TIMESTAMP_FILTER_METHOD_BEFORE": "__lt__",
    "TIMESTAMP_FILTER_METHOD_BEFORE_OR_EQUALS": "__le__",
}


async def list_credentials(
    call: Call, req: ListCredentialsRequest, table: Table, owner: Any, prefix: str, id_filter: str
) -> dict[str, Any]:
    """ListPersonalAccessTokens / ListKeys: `owner` is the column of the user's org."""
    offset, limit, asc = paging(req.pagination, "pagination")
    never = literal(NEVER, UTCDateTime())
    expires = func.coalesce(table.c.expiration, never, type_=UTCDateTime())
    columns = {
        "id": table.c.id,
        "user_id": table.c.user_id,
        "organization_id": owner,
        "created_date": table.c.created_at,
        "expiration_date": expires,
    }
    conditions: list[Any] = [table.c.instance_id == call.instance_id]
    for i, f in enumerate(req.filters):
        at = f"filters.{i}"
        given = [n for n in CredentialFilter.__struct_fields__ if getattr(f, n) is not None]
        allowed = {
            "created_date_filter",
            "expiration_date_filter",
            "organization_id_filter",
            "user_id_filter",
            id_filter,
        }
        if len(given) != 1 or given[0] not in allowed:
            names = ", ".join(sorted(_camel(n) for n in allowed))
            raise invalid(at, f"set exactly one of {names}")
        name = given[0]
        value = getattr(f, name)
        column = columns["id" if name == id_filter else name.removesuffix("_filter")]
        if isinstance(value, IDFilter):
            conditions.append(column == value.id)
            continue
        when = parse_timestamp(f"{at}.{_camel(name)}.timestamp", value.timestamp)
        if when is None:
            raise invalid(f"{at}.{_camel(name)}.timestamp", "is required")
        op = TIMESTAMP_METHODS.get(value.method)
        if op is None:
            raise invalid(f"{at}.{_camel(name)}.method", f"unknown method {value.method!r}")
        conditions.append(getattr(column, op)(when))
    sorting = {None: "created_date", f"{prefix}_UNSPECIFIED": "created_date"}
    sorting.update({f"{prefix}_{k.upper()}": k for k in columns})
    sorting[f"{prefix}_CREATED_DATE"] = "created_date"
    sorting[f"{prefix}_KEY_EXPIRATION_DATE"] = "expiration_date"
    sort = columns[sort_column(sorting, req.sorting_column)]
    visible = await call.visible_orgs("user.read")
    if visible is not None:
        conditions.append(or_(owner.in_(visible), table.c.user_id == call.user_id))
    joined = _joined(table)
    query = select(table, owner.label("org_id")).select_from(joined)
    order = ordering(asc, sort, table.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, joined, conditions, order, offset, limit, query)
    return {
        "pagination": pagination(total, limit),
        "result": [
            {
                "creationDate": timestamp(r.created_at),
                "changeDate": timestamp(r.created_at),
                "id": r.id,
                "userId": r.user_id,
                "organizationId": r.org_id,
                "expirationDate": timestamp(r.expiration or NEVER),
            }
            for r in rows
        ],
    }


def _joined(table: Table) -> Any:
    if table is personal_access_tokens_table:
        u = users_table
        return table.join(u, (u.c.instance_id == table.c.instance_id) & (u.c.id == table.c.user_id))
    return table


def _camel(name: str) -> str:
    return "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))


@service.rpc("ListPersonalAccessTokens", request=ListCredentialsRequest)
async def list_personal_access_tokens(call: Call, req: ListCredentialsRequest) -> dict[str, Any]:
    """Search personal access tokens (never the tokens themselves) the caller may read."""
    return await list_credentials(
        call,
        req,
        personal_access_tokens_table,
        users_table.c.resource_owner,
        "PERSONAL_ACCESS_TOKEN_FIELD_NAME",
        "token_id_filter",
    )


@service.rpc("ListKeys", request=ListCredentialsRequest)
async def list_keys(call: Call, req: ListCredentialsRequest) -> dict[str, Any]:
    """Search machine users' keys (never their private halves) the caller may read."""
    t = keys.machine_keys_table
    return await list_credentials(
        call, req, t, t.c.resource_owner, "KEY_FIELD_NAME", "key_id_filter"
    )
