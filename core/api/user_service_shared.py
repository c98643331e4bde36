"""What the UserService modules share: the service, loading a user, permissions, `User`.

The service's methods are declared in `user_service` (which imports all of
its modules, so importing it brings every method) and the `user_service_*`
modules, all on `service` here.
"""

from __future__ import annotations

from typing import Any

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    details,
    invalid,
    load_existing,
    timestamp,
)
from donjon.core.events import Event
from donjon.core.identity import user_commands as cmd
from donjon.core.identity.user_reads import login_domains, login_names
from donjon.core.identity.users import (
    ACTIVE,
    HUMAN,
    INACTIVE,
    INITIAL,
    LOCKED,
    UserState,
)

service = Service("zitadel.user.v2.UserService")

STATES = {
    ACTIVE: "USER_STATE_ACTIVE",
    INACTIVE: "USER_STATE_INACTIVE",
    LOCKED: "USER_STATE_LOCKED",
    INITIAL: "USER_STATE_INITIAL",
}
GENDERS = {
    "": "GENDER_UNSPECIFIED",
    "female": "GENDER_FEMALE",
    "male": "GENDER_MALE",
    "diverse": "GENDER_DIVERSE",
}
ACCESS_TOKEN_TYPES = {"bearer": "ACCESS_TOKEN_TYPE_BEARER", "jwt": "ACCESS_TOKEN_TYPE_JWT"}


class UserIDRequest(Message):
    user_id: str = ""


class Profile(Message):
    given_name: str | None = None
    family_name: str | None = None
    nick_name: str | None = None
    display_name: str | None = None
    preferred_language: str | None = None
    gender: str | None = None


class SendCode(Message):
    url_template: str | None = None


class SetEmail(Message):
    email: str | None = None
    is_verified: bool | None = None
    return_code: dict[str, Any] | None = None
    send_code: SendCode | None = None


class SetPhone(Message):
    phone: str | None = None
    is_verified: bool | None = None
    return_code: dict[str, Any] | None = None
    send_code: dict[str, Any] | None = None


class Password(Message):
    password: str = ""
    change_required: bool = False


class HashedPassword(Message):
    hash: str = ""
    change_required: bool = False


class SetPassword(Message):
    """`password` or `hashedPassword`; a change is proven by `currentPassword` or a code."""

    password: Password | None = None
    hashed_password: HashedPassword | None = None
    current_password: str | None = None
    verification_code: str | None = None


class MetadataEntry(Message):
    key: str = ""
    value: bytes = b""


# -- helpers ---------------------------------------------------------------


async def load_user(call: Call, user_id: str, field_name: str = "userId") -> UserState:
    """The user's write model; invalid_argument when the id is empty, not_found when unknown."""
    return await load_existing(call, UserState, user_id, field_name, "user")


async def authorize(
    call: Call, permission: str, state: UserState, *, self_ok: bool = False
) -> None:
    """permission_denied unless the caller holds `permission` on the user's org (or is it)."""
    if self_ok and call.user_id == state.id:
        return
    await call.require(permission, org_id=state.owner)


async def authorized_user(
    call: Call, user_id: str, permission: str, *, self_ok: bool = False
) -> UserState:
    """`load_user` then `authorize`: an unknown user is not_found before permissions count."""
    state = await load_user(call, user_id)
    await authorize(call, permission, state, self_ok=self_ok)
    return state


def precondition(exc: cmd.Precondition) -> ConnectError:
    return ConnectError("failed_precondition", str(exc))


def field(path: str, check: Any, *args: Any, **kw: Any) -> Any:
    """`check(*args)`, its ValueError turned into invalid_argument naming `path`."""
    try:
        return check(*args, **kw)
    except ValueError as exc:
        raise invalid(path, str(exc)) from None


def gender_of(path: str, value: str | None) -> str | None:
    """The stored gender of a GENDER_* name (None stays None: unchanged)."""
    if value is None:
        return None
    for stored, name in GENDERS.items():
        if name == value:
            return stored
    raise invalid(path, f"unknown gender {value!r} (known: {', '.join(GENDERS.values())})")


async def push_change(
    call: Call, state: UserState, events: list[Event], unique: list[Any] | None = None
) -> dict[str, Any]:
    """Push `events` on the user and answer `{details}`; details of now when there are none."""
    if not events:
        return {
            "details": details(
                sequence=state.sequence, changed_at=state.changed_at, owner=state.owner
            )
        }
    stored = await call.runtime.store.push(
        cmd.change(state, events, unique or []), creator=call.user_id
    )
    return {"details": details(stored)}


def user_message(row: Any, domains: tuple[str, list[str]]) -> dict[str, Any]:
    """The `User` message of a `users` row, with its login names."""
    names, preferred = login_names(row.username, domains)
    out: dict[str, Any] = {
        "userId": row.id,
        "details": details(
            sequence=row.sequence,
            changed_at=row.changed_at,
            owner=row.resource_owner,
            created_at=row.created_at,
        ),
        "state": STATES.get(row.state, "USER_STATE_UNSPECIFIED"),
        "username": row.username,
        "loginNames": names,
        "preferredLoginName": preferred,
    }
    if row.type == HUMAN:
        human: dict[str, Any] = {
            "profile": {
                "givenName": row.first_name,
                "familyName": row.last_name,
                "nickName": row.nick_name,
                "displayName": row.display_name,
                "preferredLanguage": row.preferred_language,
                "gender": GENDERS.get(row.gender, "GENDER_UNSPECIFIED"),
            },
            "email": {"email": row.email, "isVerified": bool(row.email_verified)},
            "phone": {"phone": row.phone, "isVerified": bool(row.phone_verified)},
            "passwordChangeRequired": bool(row.password_change_required),
        }
        if row.password_changed_at is not None:
            human["passwordChanged"] = timestamp(row.password_changed_at)
        out["human"] = human
    else:
        out["machine"] = {
            "name": row.name,
            "description": row.description,
            "hasSecret": bool(row.secret_digest),
            "accessTokenType": ACCESS_TOKEN_TYPES.get(
                row.access_token_type, "ACCESS_TOKEN_TYPE_BEARER"
            ),
        }
    return out


async def user_messages(call: Call, rows: list[Any]) -> list[dict[str, Any]]:
    async with call.runtime.db.read() as conn:
        domains = await login_domains(conn, call.instance_id, {r.resource_owner for r in rows})
    return [user_message(r, domains[r.resource_owner]) for r in rows]
