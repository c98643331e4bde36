"""UserService: ListUsers — search the users the caller may read.

The queries are ZITADEL's (`userNameQuery`, `firstNameQuery`, ...,
`andQuery`, `orQuery`, `notQuery`), one kind per element, all of a list
ANDed. The result holds the users of the orgs where the caller has
`user.read`, and the caller itself.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import and_, exists, false, func, not_, or_, select

from donjon.core.api.connect import Call, Message, invalid, list_details
from donjon.core.api.queries import (
    ListQuery,
    ordering,
    paging,
    read_page,
    sort_column,
    text_condition,
)
from donjon.core.api.user_service_shared import STATES, service, user_messages
from donjon.core.identity.orgs import org_domains_table
from donjon.core.identity.user_metadata import metadata_table
from donjon.core.identity.users import HUMAN, MACHINE, users_table

MAX_DEPTH = 10  # nested and/or/not queries


class TextQuery(Message):
    """Every text query of UserService: one value field, and the method."""

    user_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    nick_name: str | None = None
    display_name: str | None = None
    email_address: str | None = None
    number: str | None = None
    login_name: str | None = None
    method: str | None = None


class StateQuery(Message):
    state: str = ""


class TypeQuery(Message):
    type: str = ""


class OrganizationIdQuery(Message):
    organization_id: str = ""


class InUserIdsQuery(Message):
    user_ids: list[str] = []


class InUserEmailsQuery(Message):
    user_emails: list[str] = []


class MetadataKeyFilter(Message):
    key: str = ""
    method: str | None = None


class MetadataValueFilter(Message):
    value: bytes = b""
    method: str | None = None


class SearchQuery(Message):
    user_name_query: TextQuery | None = None
    first_name_query: TextQuery | None = None
    last_name_query: TextQuery | None = None
    nick_name_query: TextQuery | None = None
    display_name_query: TextQuery | None = None
    email_query: TextQuery | None = None
    phone_query: TextQuery | None = None
    login_name_query: TextQuery | None = None
    state_query: StateQuery | None = None
    type_query: TypeQuery | None = None
    organization_id_query: OrganizationIdQuery | None = None
    in_user_ids_query: InUserIdsQuery | None = None
    in_user_emails_query: InUserEmailsQuery | None = None
    metadata_key_filter: MetadataKeyFilter | None = None
    metadata_value_filter: MetadataValueFilter | None = None
    and_query: ListOfQueries | None = None
    or_query: ListOfQueries | None = None
    not_query: NotQuery | None = None


class ListOfQueries(Message):
    queries: list[SearchQuery] = []


class NotQuery(Message):
    query: SearchQuery | None = None


class ListUsersRequest(Message):
    query: ListQuery | None = None
    sorting_column: str | None = None
    queries: list[SearchQuery] = []


u = users_table

# query field -> (JSON name of its value, its attribute, the column it searches)
TEXT_QUERIES = {
    "user_name_query": ("userName", "user_name", u.c.username),
    "first_name_query": ("firstName", "first_name", u.c.first_name),
    "last_name_query": ("lastName", "last_name", u.c.last_name),
    "nick_name_query": ("nickName", "nick_name", u.c.nick_name),
    "display_name_query": ("displayName", "display_name", u.c.display_name),
    "email_query": ("emailAddress", "email_address", u.c.email),
    "phone_query": ("number", "number", u.c.phone),
}
SORTING = {
    None: u.c.created_at,
    "USER_FIELD_NAME_UNSPECIFIED": u.c.created_at,
    "USER_FIELD_NAME_CREATION_DATE": u.c.created_at,
    "USER_FIELD_NAME_USER_NAME": func.lower(u.c.username),
    "USER_FIELD_NAME_FIRST_NAME": u.c.first_name,
    "USER_FIELD_NAME_LAST_NAME": u.c.last_name,
    "USER_FIELD_NAME_NICK_NAME": u.c.nick_name,
    "USER_FIELD_NAME_DISPLAY_NAME": u.c.display_name,
    "USER_FIELD_NAME_EMAIL": u.c.email,
    "USER_FIELD_NAME_STATE": u.c.state,
    "USER_FIELD_NAME_TYPE": u.c.type,
}
TYPES = {"TYPE_HUMAN": HUMAN, "TYPE_MACHINE": MACHINE}
QUERY_KINDS = ", ".join(
    "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    for name in SearchQuery.__struct_fields__
)


def condition(q: SearchQuery, where: str, depth: int = 0) -> Any:
    """The SQL condition of one search query; invalid_argument naming what is wrong."""
    if depth > MAX_DEPTH:
        raise invalid(where, f"queries are nested more than {MAX_DEPTH} deep")
    set_fields = [name for name in SearchQuery.__struct_fields__ if getattr(q, name) is not None]
    if len(set_fields) != 1:
        raise invalid(where, f"set exactly one of {QUERY_KINDS}")
    [name] = set_fields
    value = getattr(q, name)
    camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    at = f"{where}.{camel}"
    if name in TEXT_QUERIES:
        json_name, attr, column = TEXT_QUERIES[name]
        text = getattr(value, attr)
        if text is None:
            raise invalid(f"{at}.{json_name}", "is required")
        return text_condition(column, text, value.method, at)
    if name == "login_name_query":
        if value.login_name is None:
            raise invalid(f"{at}.loginName", "is required")
        d = org_domains_table
        return exists(
            select(d.c.domain).where(
                d.c.instance_id == u.c.instance_id,
                d.c.org_id == u.c.resource_owner,
                d.c.is_verified.is_(True),
                text_condition(u.c.username + "@" + d.c.domain, value.login_name, value.method, at),
            )
        )
    if name == "state_query":
        state = {v: k for k, v in STATES.items()}.get(value.state)
        if state is None:
            raise invalid(f"{at}.state", f"unknown state {value.state!r}")
        return u.c.state == state
    if name == "type_query":
        if value.type not in TYPES:
            raise invalid(f"{at}.type", f"unknown type {value.type!r} (TYPE_HUMAN, TYPE_MACHINE)")
        return u.c.type == TYPES[value.type]
    if name == "organization_id_query":
        return u.c.resource_owner == value.organization_id
    if name == "in_user_ids_query":
        return u.c.id.in_(value.user_ids) if value.user_ids else false()
    if name == "in_user_emails_query":
        emails = [e.lower() for e in value.user_emails]
        return func.lower(u.c.email).in_(emails) if emails else false()
    if name in ("metadata_key_filter", "metadata_value_filter"):
        return _metadata(name, value, at)
    if name == "not_query":
        if value.query is None:
            raise invalid(f"{at}.query", "is required")
        return not_(condition(value.query, f"{at}.query", depth + 1))
    parts = [condition(sub, f"{at}.queries.{i}", depth + 1) for i, sub in enumerate(value.queries)]
    if name == "and_query":
        return and_(*parts) if parts else u.c.id.is_not(None)
    return or_(*parts) if parts else false()


def _metadata(name: str, value: Any, at: str) -> Any:
    m = metadata_table
    row = (m.c.instance_id == u.c.instance_id) & (m.c.user_id == u.c.id)
    if name == "metadata_key_filter":
        method = (value.method or "TEXT_FILTER_METHOD_EQUALS").replace("_FILTER_", "_QUERY_")
        return exists(select(m.c.key).where(row, text_condition(m.c.key, value.key, method, at)))
    if value.method not in (None, "BYTE_FILTER_METHOD_EQUALS"):
        raise invalid(f"{at}.method", f"unknown method {value.method!r}")
    encoded = base64.b64encode(value.value).decode()
    return exists(select(m.c.key).where(row, m.c.value == encoded))


@service.rpc("ListUsers", request=ListUsersRequest)
async def list_users(call: Call, req: ListUsersRequest) -> dict[str, Any]:
    """Search the users the caller may read."""
    offset, limit, asc = paging(req.query)
    conditions: list[Any] = [u.c.instance_id == call.instance_id]
    conditions += [condition(q, f"queries.{i}") for i, q in enumerate(req.queries)]
    sort = sort_column(SORTING, req.sorting_column)
    visible = await call.visible_orgs("user.read")
    if visible is not None:
        conditions.append(or_(u.c.resource_owner.in_(visible), u.c.id == call.user_id))
    order = ordering(asc, sort, u.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, u, conditions, order, offset, limit)
    return {
        "details": list_details(total),
        "sortingColumn": req.sorting_column or "USER_FIELD_NAME_UNSPECIFIED",
        "result": await user_messages(call, list(rows)),
    }
