"""UserService: SetUserMetadata, ListUserMetadata, DeleteUserMetadata.

Values are bytes, base64 in protobuf JSON. Setting and deleting need
`user.write` on the user's org (metadata often feeds token claims, so a user
does not write its own); reading needs `user.read`, or is of oneself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from donjon.core.api.connect import Call, ConnectError, Message, invalid, timestamp
from donjon.core.api.queries import (
    PaginationRequest,
    pagination,
    paging,
    read_page,
    text_condition,
)
from donjon.core.api.user_service_shared import (
    MetadataEntry,
    authorized_user,
    service,
)
from donjon.core.api.user_service_shared import field as checked
from donjon.core.events import Event
from donjon.core.identity import user_commands as cmd
from donjon.core.identity import user_metadata as md


class SetUserMetadataRequest(Message):
    user_id: str = ""
    metadata: list[MetadataEntry] = []


class DeleteUserMetadataRequest(Message):
    user_id: str = ""
    keys: list[str] = []


class KeyFilter(Message):
    key: str = ""
    method: str | None = None


class MetadataSearchFilter(Message):
    key_filter: KeyFilter | None = None


class ListUserMetadataRequest(Message):
    user_id: str = ""
    pagination: PaginationRequest | None = None
    filters: list[MetadataSearchFilter] = []


@service.rpc("SetUserMetadata", request=SetUserMetadataRequest)
async def set_user_metadata(call: Call, req: SetUserMetadataRequest) -> dict[str, Any]:
    """Set (add or replace) metadata entries of a user."""
    state = await authorized_user(call, req.user_id, "user.write")
    if not req.metadata:
        raise invalid("metadata", "must not be empty")
    events: list[Event] = [
        md.MetadataSet(
            key=checked(f"metadata.{i}.key", md.check_key, m.key),
            value=checked(f"metadata.{i}.value", md.check_value, m.value),
        )
        for i, m in enumerate(req.metadata)
    ]
    stored = await call.runtime.store.push(cmd.change(state, events), creator=call.user_id)
    return {"setDate": timestamp(stored[-1].created_at)}


@service.rpc("DeleteUserMetadata", request=DeleteUserMetadataRequest)
async def delete_user_metadata(call: Call, req: DeleteUserMetadataRequest) -> dict[str, Any]:
    """Remove metadata entries of a user by key."""
    state = await authorized_user(call, req.user_id, "user.write")
    if not req.keys:
        raise invalid("keys", "must not be empty")
    for i, key in enumerate(req.keys):
        if key not in state.metadata:
            raise ConnectError("not_found", f"keys.{i}: no metadata {key!r} on the user")
    events = [md.MetadataRemoved(key=k) for k in dict.fromkeys(req.keys)]
    stored = await call.runtime.store.push(cmd.change(state, events), creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at)}


@service.rpc("ListUserMetadata", request=ListUserMetadataRequest)
async def list_user_metadata(call: Call, req: ListUserMetadataRequest) -> dict[str, Any]:
    """A user's metadata, by key."""
    state = await authorized_user(call, req.user_id, "user.read", self_ok=True)
    offset, limit, asc = paging(req.pagination, "pagination")
    m = md.metadata_table
    conditions: list[Any] = [m.c.instance_id == call.instance_id, m.c.user_id == state.id]
    for i, f in enumerate(req.filters):
        if f.key_filter is None:
            raise invalid(f"filters.{i}", "set keyFilter")
        method = (f.key_filter.method or "TEXT_FILTER_METHOD_EQUALS").replace("_FILTER_", "_QUERY_")
        conditions.append(
            text_condition(m.c.key, f.key_filter.key, method, f"filters.{i}.keyFilter")
        )
    # Keys read best in order: ascending unless the caller asks otherwise.
    order = m.c.key.desc() if req.pagination is not None and not asc else m.c.key.asc()
    async with call.runtime.db.read() as conn:
        query = select(m.c.key, m.c.value)
        total, rows = await read_page(conn, m, conditions, [order], offset, limit, query)
    return {
        "pagination": pagination(total, limit),
        "metadata": [{"key": r.key, "value": r.value} for r in rows],
    }
