"""OAuth clients: the instance's OIDC and API applications, and its machine users.

An application is found by its client id (`apps.app_by_client_id`) and may
be used only while it and its project are active; one authenticating with
`private_key_jwt` signs with one of its application keys (`app_keys`). A
machine user is a
client under its user name (ZITADEL's client credentials), authenticating
with its client secret or, for `private_key_jwt` and the JWT profile grant,
with one of its keys (then its user id names it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.identity import apps
from donjon.core.identity.app_keys import AppKey, app_key
from donjon.core.identity.user_keys import MachineKey, machine_key
from donjon.core.identity.users import ACTIVE, MACHINE, users_table

APP, MACHINE_USER = "app", "machine"
# RFC 7591 names of the app auth methods ZITADEL stores.
APP_AUTH_METHODS = {
    "basic": "client_secret_basic",
    "post": "client_secret_post",
    "none": "none",
    "private_key_jwt": "private_key_jwt",
}


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated (or, for `none`, identified) client."""

    client_id: str
    kind: str  # app | machine
    #: How it authenticated: client_secret_basic, client_secret_post, private_key_jwt, none.
    auth_method: str
    org_id: str
    #: The app's project (apps only).
    project_id: str = ""
    app_id: str = ""
    #: oidc | api (apps only)
    app_kind: str = ""
    grant_types: tuple[str, ...] = ()
    #: The machine user behind the client (machine users only).
    user_id: str = ""
    #: The app takes only DPoP-bound access tokens (RFC 9449 §5.2, apps only).
    dpop_bound_access_tokens: bool = False

    @property
    def is_machine(self) -> bool:
        return self.kind == MACHINE_USER


async def find_app(
    conn: AsyncConnection, instance_id: str, client_id: str
) -> dict[str, Any] | None:
    """The OIDC or API app with this client id, or None."""
    row = await apps.app_by_client_id(conn, instance_id, client_id)
    if row is None or row["type"] not in (apps.OIDC, apps.API):
        return None
    return row


def app_is_usable(app: dict[str, Any]) -> bool:
    """Active app in an active project (ZITADEL refuses the others at every endpoint)."""
    return app["state"] == apps.ACTIVE and app["project_state"] == "active"


def app_client(app: dict[str, Any], auth_method: str) -> Client:
    return Client(
        client_id=app["client_id"],
        kind=APP,
        auth_method=auth_method,
        org_id=app["resource_owner"],
        project_id=app["project_id"],
        app_id=app["id"],
        app_kind=app["type"],
        grant_types=tuple(app["grant_types"] or ()),
        dpop_bound_access_tokens=bool(app.get("dpop_bound_access_tokens")),
    )


async def find_machine(
    conn: AsyncConnection, instance_id: str, name_or_id: str, *, by_id: bool = False
) -> dict[str, Any] | None:
    """The machine user with this user name (or, `by_id`, also this user id), or None."""
    u = users_table
    base = select(u).where(u.c.instance_id == instance_id, u.c.type == MACHINE)
    row = None
    if by_id:
        row = (await conn.execute(base.where(u.c.id == name_or_id))).first()
    if row is None:
        row = (
            await conn.execute(base.where(func.lower(u.c.username) == name_or_id.lower()))
        ).first()
    return dict(row._mapping) if row else None


def machine_is_usable(user: dict[str, Any]) -> bool:
    return user["state"] == ACTIVE


def machine_client(user: dict[str, Any], client_id: str, auth_method: str) -> Client:
    return Client(
        client_id=client_id,
        kind=MACHINE_USER,
        auth_method=auth_method,
        org_id=user["resource_owner"],
        user_id=user["id"],
    )


def _unexpired(expiration: datetime | None) -> bool:
    return expiration is None or expiration > datetime.now(UTC)


async def usable_machine_key(
    conn: AsyncConnection, instance_id: str, user_id: str, key_id: str
) -> MachineKey | None:
    """The machine user's key `key_id` when it exists and has not expired."""
    key = await machine_key(conn, instance_id, user_id, key_id)
    return key if key is not None and _unexpired(key.expiration) else None


async def usable_app_key(
    conn: AsyncConnection, instance_id: str, client_id: str, key_id: str
) -> AppKey | None:
    """The application key `key_id` of `client_id` when it exists and has not expired."""
    key = await app_key(conn, instance_id, client_id, key_id)
    return key if key is not None and _unexpired(key.expiration) else None
