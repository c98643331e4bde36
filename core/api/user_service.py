"""zitadel.user.v2.UserService: human and machine users, their credentials and metadata.

Importing this module declares every method on `service` (from
`user_service_shared`, with what the methods share: loading a user, the
permission rule, the `User` message). Here: GetUserByID, LockUser,
UnlockUser, DeactivateUser, ReactivateUser, DeleteUser; the others in

- `user_service_create`: AddHumanUser, CreateUser (and the human admins of AddOrganization);
- `user_service_update`: UpdateHumanUser, UpdateUser, SetEmail, VerifyEmail, SetPhone,
  VerifyPhone, RemovePhone, SetPassword, PasswordReset;
- `user_service_list`: ListUsers;
- `user_service_machine`: personal access tokens, keys and the client secret of machine users;
- `user_service_metadata`: SetUserMetadata, ListUserMetadata, DeleteUserMetadata.

Permissions (ZITADEL's): `user.read`, `user.write`, `user.delete` and
`user.credential.write` on the user's org. A user may also read itself, change
its own profile, email and phone, change its own password (proving the
current one or a code) and delete itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

# Importing the modules declares their methods on `service`.
from donjon.core.api import (  # noqa: F401
    user_service_create,
    user_service_list,
    user_service_machine,
    user_service_metadata,
    user_service_update,
)
from donjon.core.api.connect import Call, details, invalid, not_found
from donjon.core.api.user_service_shared import (
    UserIDRequest,
    authorized_user,
    precondition,
    push_change,
    service,
    user_messages,
)
from donjon.core.identity import user_commands as cmd
from donjon.core.identity.users import users_table

__all__ = ["service"]


# -- methods ---------------------------------------------------------------------------------


@service.rpc("GetUserByID", request=UserIDRequest)
async def get_user_by_id(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """A user with its profile (human) or machine data, state and login names."""
    if not req.user_id:
        raise invalid("userId", "is required")
    u = users_table
    async with call.runtime.db.read() as conn:
        row = (
            await conn.execute(
                select(u).where(u.c.instance_id == call.instance_id, u.c.id == req.user_id)
            )
        ).first()
    if row is None:
        raise not_found("user")
    if call.user_id != row.id:
        await call.require("user.read", org_id=row.resource_owner)
    [user] = await user_messages(call, [row])
    return {"details": user["details"], "user": user}


async def _transition(call: Call, req: UserIDRequest, step: Any) -> dict[str, Any]:
    state = await authorized_user(call, req.user_id, "user.write")
    try:
        event = step(state)
    except cmd.Precondition as exc:
        raise precondition(exc) from None
    return await push_change(call, state, [event])


@service.rpc("LockUser", request=UserIDRequest)
async def lock_user(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Lock an active or initial user: it can no longer log in or use its tokens."""
    return await _transition(call, req, cmd.lock)


@service.rpc("UnlockUser", request=UserIDRequest)
async def unlock_user(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Unlock a locked user (and reset its failed password attempts)."""
    return await _transition(call, req, cmd.unlock)


@service.rpc("DeactivateUser", request=UserIDRequest)
async def deactivate_user(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Deactivate an active user: it can no longer log in or use its tokens."""
    return await _transition(call, req, cmd.deactivate)


@service.rpc("ReactivateUser", request=UserIDRequest)
async def reactivate_user(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Reactivate a deactivated user."""
    return await _transition(call, req, cmd.reactivate)


@service.rpc("DeleteUser", request=UserIDRequest)
async def delete_user(call: Call, req: UserIDRequest) -> dict[str, Any]:
    """Remove a user: its user name is free again; its tokens, keys, metadata and memberships go."""
    state = await authorized_user(call, req.user_id, "user.delete", self_ok=True)
    stored = await call.runtime.store.push(cmd.remove(state), creator=call.user_id)
    return {"details": details(stored)}
