"""ApplicationService: application keys (CreateApplicationKey, GetApplicationKey,
ListApplicationKeys, DeleteApplicationKey), as in ZITADEL v2.

Only OIDC and API apps whose auth method is `private_key_jwt` have keys
(`failed_precondition` otherwise). CreateApplicationKey generates an RSA 2048
key pair and returns its private half once, in `keyDetails` (base64 of
ZITADEL's key file `{"type": "application", "keyId", "key", "appId",
"clientId"}`); with `publicKey` (a donjon extension: a PEM public key, base64
as protobuf JSON sends bytes) it stores that key instead and returns no
`keyDetails`. `expirationDate` must be in the future; without one the key
expires on 9999-01-01 (ZITADEL's default). Creating and deleting keys needs
`project.app.write`, reading them `project.app.read`, on the app's org or
project.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select

from donjon.core import ids
from donjon.core.api.application_service import app_state, service
from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    invalid,
    not_found,
    timestamp,
)
from donjon.core.api.project_service import readable
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    sort_column,
)
from donjon.core.api.user_service_machine import expiration, key_pair
from donjon.core.identity import app_keys
from donjon.core.identity.app_keys import KeyPrecondition, app_keys_table


class CreateApplicationKeyRequest(Message):
    application_id: str = ""
    project_id: str = ""
    expiration_date: str | None = None
    #: donjon extension: a PEM public key to store instead of generating a key pair.
    public_key: bytes | None = None


class GetApplicationKeyRequest(Message):
    key_id: str = ""
    application_id: str = ""
    project_id: str = ""
    organization_id: str = ""


class DeleteApplicationKeyRequest(Message):
    key_id: str = ""
    application_id: str = ""
    project_id: str = ""
    organization_id: str = ""


class ApplicationIDFilter(Message):
    application_id: str = ""


class ProjectIDFilter(Message):
    project_id: str = ""


class OrganizationIDFilter(Message):
    organization_id: str = ""


class ApplicationKeySearchFilter(Message):
    application_id_filter: ApplicationIDFilter | None = None
    project_id_filter: ProjectIDFilter | None = None
    organization_id_filter: OrganizationIDFilter | None = None


class ListApplicationKeysRequest(Message):
    pagination: PaginationRequest | None = None
    sorting_column: str | None = None
    filters: list[ApplicationKeySearchFilter] = []


def _key(row: Any) -> dict[str, Any]:
    return {
        "keyId": row.id,
        "applicationId": row.app_id,
        "projectId": row.project_id,
        "organizationId": row.resource_owner,
        "creationDate": timestamp(row.created_at),
        "expirationDate": timestamp(row.expiration),
    }


async def _key_row(call: Call, req: GetApplicationKeyRequest | DeleteApplicationKeyRequest) -> Any:
    """The key's row; not_found when it does not exist or is not of the app, project or org
    the request names."""
    if not req.key_id:
        raise invalid("keyId", "is required")
    t = app_keys_table
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(t).where(t.c.instance_id == call.instance_id, t.c.id == req.key_id)
            )
        ).first()
    if row is None or any(
        given and given != actual
        for given, actual in (
            (req.application_id, row.app_id),
            (req.project_id, row.project_id),
            (req.organization_id, row.resource_owner),
        )
    ):
        raise not_found("application key")
    return row


@service.rpc("CreateApplicationKey", request=CreateApplicationKeyRequest)
async def create_application_key(call: Call, req: CreateApplicationKeyRequest) -> dict[str, Any]:
    """Add a key to an app authenticating with private_key_jwt; a generated private key is
    returned only now."""
    state = await app_state(
        call, req.application_id, req.project_id, permission="project.app.write"
    )
    try:
        app_keys.check_can_hold_keys(state.app)
    except KeyPrecondition as exc:
        raise ConnectError("failed_precondition", str(exc)) from None
    expires = expiration(req.expiration_date)
    key_id = ids.new_id()
    public_pem, private_pem = key_pair(req.public_key)
    details = None
    if private_pem is not None:
        client_id = str(state.app.get("client_id", ""))
        details = app_keys.key_file(key_id, state.app_id, client_id, private_pem)
    stored = await call.runtime.store.push(
        app_keys.add_key(state, key_id, public_pem, expires), creator=call.user_id
    )
    out: dict[str, Any] = {"keyId": key_id, "creationDate": timestamp(stored[-1].created_at)}
    if details is not None:
        out["keyDetails"] = base64.b64encode(details).decode()
    return out


@service.rpc("GetApplicationKey", request=GetApplicationKeyRequest)
async def get_application_key(call: Call, req: GetApplicationKeyRequest) -> dict[str, Any]:
    """An application key by its id (never its private half)."""
    row = await _key_row(call, req)
    await call.require("project.app.read", org_id=row.resource_owner, project_id=row.project_id)
    return {
        "keyId": row.id,
        "creationDate": timestamp(row.created_at),
        "expirationDate": timestamp(row.expiration),
    }


def _key_filter(f: ApplicationKeySearchFilter, i: int) -> Any:
    t = app_keys_table
    if f.application_id_filter is not None:
        return t.c.app_id == f.application_id_filter.application_id
    if f.project_id_filter is not None:
        return t.c.project_id == f.project_id_filter.project_id
    if f.organization_id_filter is not None:
        return t.c.resource_owner == f.organization_id_filter.organization_id
    raise invalid(
        f"filters.{i}", "set one of applicationIdFilter, projectIdFilter, organizationIdFilter"
    )


@service.rpc("ListApplicationKeys", request=ListApplicationKeysRequest)
async def list_application_keys(call: Call, req: ListApplicationKeysRequest) -> dict[str, Any]:
    """Search the application keys the caller may read."""
    offset, limit, asc = paging(req.pagination, "pagination")
    t = app_keys_table
    sorts = {
        None: t.c.created_at,
        "APPLICATION_KEYS_SORT_BY_ID": t.c.id,
        "APPLICATION_KEYS_SORT_BY_PROJECT_ID": t.c.project_id,
        "APPLICATION_KEYS_SORT_BY_APPLICATION_ID": t.c.app_id,
        "APPLICATION_KEYS_SORT_BY_CREATION_DATE": t.c.created_at,
        "APPLICATION_KEYS_SORT_BY_ORGANIZATION_ID": t.c.resource_owner,
        "APPLICATION_KEYS_SORT_BY_EXPIRATION": t.c.expiration,
        "APPLICATION_KEYS_SORT_BY_TYPE": t.c.key_type,
    }
    sort = sort_column(sorts, req.sorting_column)
    conditions: list[Any] = [t.c.instance_id == call.instance_id]
    conditions += [_key_filter(f, i) for i, f in enumerate(req.filters)]
    visible = await readable(call, "project.app.read", t.c.resource_owner, t.c.project_id)
    if visible is not None:
        conditions.append(visible)
    order = ordering(asc, sort, t.c.id)
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {"keys": [_key(r) for r in rows], "pagination": pagination(total, limit)}


@service.rpc("DeleteApplicationKey", request=DeleteApplicationKeyRequest)
async def delete_application_key(call: Call, req: DeleteApplicationKeyRequest) -> dict[str, Any]:
    """Remove an application key: assertions signed with it are refused from now on."""
    row = await _key_row(call, req)
    state = await app_state(call, row.app_id, row.project_id, permission="project.app.write")
    try:
        changes = app_keys.remove_key(state, row.id)
    except KeyPrecondition:
        raise not_found("application key") from None
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at)}
