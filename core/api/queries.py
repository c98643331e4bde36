"""What list methods share: paging (`query`/`pagination`), sorting, counting and
reading one page, and text query methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Row, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement as _Element

from donjon.core.api.connect import Message, invalid

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

TEXT_METHODS = (
    "TEXT_QUERY_METHOD_EQUALS",
    "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE",
    "TEXT_QUERY_METHOD_STARTS_WITH",
    "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE",
    "TEXT_QUERY_METHOD_CONTAINS",
    "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE",
    "TEXT_QUERY_METHOD_ENDS_WITH",
    "TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE",
)


class ListQuery(Message):
    """ZITADEL's `query` of v2 list requests (offset is an int64, so a string)."""

    offset: str | int | None = None
    limit: int | None = None
    asc: bool = False


class PaginationRequest(Message):
    """The `pagination` of newer v2 list requests (projects, applications, authorizations)."""

    offset: str | int | None = None
    limit: int | None = None
    asc: bool = False


def paging(
    query: ListQuery | PaginationRequest | None, field_name: str = "query"
) -> tuple[int, int, bool]:
    """(offset, limit, ascending) of a list request; limit 0 means the default (100)."""
    if query is None:
        return 0, DEFAULT_LIMIT, False
    try:
        offset = int(query.offset or 0)
    except (TypeError, ValueError):
        raise invalid(
            f"{field_name}.offset", f"expected an integer, got {query.offset!r}"
        ) from None
    if offset < 0:
        raise invalid(f"{field_name}.offset", "must not be negative")
    limit = query.limit or DEFAULT_LIMIT
    if limit < 0:
        raise invalid(f"{field_name}.limit", "must not be negative")
    if limit > MAX_LIMIT:
        raise invalid(f"{field_name}.limit", f"must be at most {MAX_LIMIT}")
    return offset, limit, bool(query.asc)


def sort_column(columns: Mapping[str | None, Any], name: str | None) -> Any:
    """The column a list request's `sortingColumn` names (None: its default); else a 400."""
    sort = columns.get(name)
    if sort is None:
        raise invalid("sortingColumn", f"unknown column {name!r}")
    return sort


def ordering(asc: bool, *columns: Any) -> list[Any]:
    """ORDER BY terms: each column in the request's direction (later ones break ties)."""
    return [c.asc() if asc else c.desc() for c in columns]


async def read_page(
    conn: AsyncConnection,
    source: Any,
    conditions: Sequence[Any],
    order: Sequence[Any],
    offset: int,
    limit: int,
    query: Any = None,
) -> tuple[int, Sequence[Row[Any]]]:
    """(total, rows): how many rows of `source` match, and the page asked for.

    `query` selects the page's columns (all of `source` when absent); it is
    counted over `source` alone, which must hold one row per result.
    """
    where = and_(*conditions)
    total = (await conn.execute(select(func.count()).select_from(source).where(where))).scalar_one()
    if query is None:
        query = select(source)
    page = query.where(where).order_by(*order).offset(offset).limit(limit)
    rows = (await conn.execute(page)).all()
    return total, rows


def pagination(total: int, limit: int) -> dict[str, str]:
    """The `pagination` of a newer v2 list response (PaginationResponse)."""
    return {"totalResult": str(total), "appliedLimit": str(limit)}


class PrefixRange(_Element[bool]):
    """`column` lies in the range of strings starting with `prefix`, in binary order.

    Added beside `LIKE 'prefix%'` so that SQLite, whose LIKE optimisation does
    not apply to expressions such as lower(username), can use an index for a
    prefix search. It compiles to TRUE elsewhere: PostgreSQL uses a
    text_pattern_ops index for the LIKE itself, and its collations need not
    sort a prefix's strings together.
    """

    type = Boolean()
    inherit_cache = True
    # A comparison already: no `= 1` around it on SQLite.
    _is_implicitly_boolean = True

    def __init__(self, column: Any, prefix: str) -> None:
        self.column = column
        self.prefix = prefix


@compiles(PrefixRange)
def _prefix_range_default(element: PrefixRange, compiler: Any, **kw: Any) -> str:
    return "1 = 1"


@compiles(PrefixRange, "sqlite")
def _prefix_range_sqlite(element: PrefixRange, compiler: Any, **kw: Any) -> str:
    low = element.prefix
    high = low[:-1] + chr(ord(low[-1]) + 1)
    expr = (element.column >= low) & (element.column < high)
    return f"({compiler.process(expr, **kw)})"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_condition(
    column: Any, value: str, method: str | None, field_name: str
) -> ColumnElement[bool]:
    """The condition of a text query (`TEXT_QUERY_METHOD_*`, EQUALS when absent)."""
    method = method or "TEXT_QUERY_METHOD_EQUALS"
    if method not in TEXT_METHODS:
        raise invalid(f"{field_name}.method", f"unknown method {method!r}")
    ignore_case = method.endswith("_IGNORE_CASE")
    if ignore_case:
        column, value = func.lower(column), value.lower()
    kind = method.removeprefix("TEXT_QUERY_METHOD_").removesuffix("_IGNORE_CASE")
    if kind == "EQUALS":
        return column == value
    pattern = {
        "STARTS_WITH": f"{_escape(value)}%",
        "CONTAINS": f"%{_escape(value)}%",
        "ENDS_WITH": f"%{_escape(value)}",
    }[kind]
    condition = column.like(pattern, escape="\\")
    if kind == "STARTS_WITH" and value and ord(value[-1]) < 0x10FFFF:
        return condition & PrefixRange(column, value)
    return condition
