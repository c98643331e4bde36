"""UserService: changing a user — UpdateHumanUser, UpdateUser, email, phone and password.

Who may do what (on top of `user.write` / `user.credential.write` on the
user's org):

- a user may change its own user name, profile, email and phone, but only an
  administrator (`user.write`) may set them verified without a code;
- a new password needs `user.credential.write`, or the current password
  (the user itself, or a credential administrator), or a code from
  PasswordReset (whoever holds it: it was sent to, or returned for, the user).

Verification codes carry 256 bits, so a wrong code is just refused
(invalid_argument) without recording a failure: guessing is hopeless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from donjon.core.api.connect import Call, ConnectError, Message, invalid
from donjon.core.api.user_service_create import Machine, code_events, password_hash
from donjon.core.api.user_service_shared import (
    HashedPassword,
    Password,
    Profile,
    SetEmail,
    SetPassword,
    SetPhone,
    authorized_user,
    gender_of,
    load_user,
    precondition,
    push_change,
    service,
)
from donjon.core.api.user_service_shared import field as checked
from donjon.core.events import Event
from donjon.core.identity import user_commands as cmd
from donjon.core.identity import user_events as ev
from donjon.core.identity.user_password import verify_current
from donjon.core.identity.users import UserState


@dataclass
class Planned:
    """The events of an update, its unique value changes, and the codes to hand back."""

    events: list[Event] = field(default_factory=list)
    unique: list[Any] = field(default_factory=list)
    email_code: str = ""
    phone_code: str = ""

    def codes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.email_code:
            out["emailCode"] = self.email_code
        if self.phone_code:
            out["phoneCode"] = self.phone_code
        return out


def _human(state: UserState) -> None:
    try:
        cmd.require_human(state)
    except cmd.Precondition as exc:
        raise precondition(exc) from None


# -- the parts of an update ---------------------------------------------------------------


def plan_profile(
    state: UserState, profile: Profile, at: str, *, names_required: bool
) -> list[Event]:
    """A profile change with only the fields that differ; none when nothing does."""
    given: dict[str, str] = {}
    for attr, json_name, required in (
        ("given_name", "givenName", True),
        ("family_name", "familyName", True),
        ("nick_name", "nickName", False),
        ("display_name", "displayName", False),
    ):
        value = getattr(profile, attr)
        if value is None:
            if names_required and required:
                raise invalid(f"{at}{json_name}", "must not be empty")
            continue
        given[attr] = checked(f"{at}{json_name}", cmd.check_name, value, required=required)
    if profile.preferred_language is not None:
        given["preferred_language"] = checked(
            f"{at}preferredLanguage", cmd.check_language, profile.preferred_language
        )
    gender = gender_of(f"{at}gender", profile.gender)
    if gender is not None:
        given["gender"] = gender
    changes = {
        name: value
        for name, value in {
            "first_name": given.get("given_name"),
            "last_name": given.get("family_name"),
            "nick_name": given.get("nick_name"),
            "display_name": given.get("display_name"),
            "preferred_language": given.get("preferred_language"),
            "gender": given.get("gender"),
        }.items()
        if value is not None and value != getattr(state, name)
    }
    # An empty display name means the default ("given family"); a display name
    # not sent follows the names when it was the default.
    changes.pop("display_name", None)
    display = given.get("display_name")
    old_default = cmd.default_display_name(state.first_name, state.last_name)
    if display is not None or state.display_name in ("", old_default):
        target = display or cmd.default_display_name(
            changes.get("first_name", state.first_name), changes.get("last_name", state.last_name)
        )
        if target != state.display_name:
            changes["display_name"] = target
    return [ev.HumanProfileChanged(**changes)] if changes else []


async def plan_email(
    call: Call, state: UserState, email: SetEmail, at: str, planned: Planned, *, must_change: bool
) -> None:
    address = checked(f"{at}email", cmd.check_email, email.email or "")
    if email.is_verified:
        await call.require("user.write", org_id=state.owner)  # not the user itself
    if address == state.email:
        if state.email_verified:
            if must_change:
                raise ConnectError(
                    "failed_precondition", f"{at}email: the email is unchanged and verified"
                )
            return
        # Unverified: SetEmail makes a new code; an update only when asked for one.
        if not must_change and not (email.is_verified or email.return_code is not None):
            return
    if address != state.email:
        planned.events.append(ev.HumanEmailChanged(address))
    url = (email.send_code.url_template or "") if email.send_code else ""
    events, planned.email_code = code_events(
        "email", bool(email.is_verified), email.return_code is not None, url
    )
    planned.events += events


async def plan_phone(
    call: Call, state: UserState, phone: SetPhone, at: str, planned: Planned, *, must_change: bool
) -> None:
    if not phone.phone and not must_change:
        if state.phone:
            planned.events.append(ev.HumanPhoneRemoved())
        return
    number = checked(f"{at}phone", cmd.check_phone, phone.phone or "")
    if phone.is_verified:
        await call.require("user.write", org_id=state.owner)
    if number == state.phone:
        if state.phone_verified:
            if must_change:
                raise ConnectError(
                    "failed_precondition", f"{at}phone: the phone is unchanged and verified"
                )
            return
        if not must_change and not (phone.is_verified or phone.return_code is not None):
            return
    if number != state.phone:
        planned.events.append(ev.HumanPhoneChanged(number))
    events, planned.phone_code = code_events(
        "phone", bool(phone.is_verified), phone.return_code is not None
    )
    planned.events += events


async def plan_password(
    call: Call,
    state: UserState,
    password: Password | None,
    hashed: HashedPassword | None,
    current: str | None,
    code: str | None,
    *,
    at: str,
    paths: tuple[str, str],
) -> list[Event]:
    """A new password, authorised by a code, the current password or `user.credential.write`."""
    if code:
        if not cmd.code_matches(state.password_code, code):
            raise invalid(f"{at}verificationCode", "is wrong or expired")
    elif current is not None:
        if call.user_id != state.id:
            await call.require("user.credential.write", org_id=state.owner)
        if not await verify_current(call.runtime, state, current):
            raise invalid(f"{at}currentPassword", "is wrong")
    else:
        await call.require("user.credential.write", org_id=state.owner)
    if password is None and hashed is None:
        raise invalid(paths[0], "is required")
    encoded, change_required = await password_hash(call, state.owner, password, hashed, paths)
    return [ev.HumanPasswordChanged(password_hash=encoded, change_required=change_required)]


def plan_username(state: UserState, username: str | None, planned: Planned) -> None:
    if username is None:
        return
    events, unique = cmd.rename(state, checked("username", cmd.check_username, username))
    planned.events += events
    planned.unique += unique


# -- UpdateHumanUser and UpdateUser ----------------------------------------------------------


class UpdateHumanUserRequest(Message):
    user_id: str = ""
    username: str | None = None
    profile: Profile | None = None
    email: SetEmail | None = None
    phone: SetPhone | None = None
    password: SetPassword | None = None


async def _plan_human_update(
    call: Call,
    state: UserState,
    update: UpdateHumanUserRequest | HumanUpdate,
    at: str,
    planned: Planned,
    *,
    names_required: bool,
) -> None:
    """Plan the profile, email, phone and password changes sent; `at` prefixes their paths."""
    if update.profile is not None:
        planned.events += plan_profile(
            state, update.profile, f"{at}profile.", names_required=names_required
        )
    if update.email is not None:
        await plan_email(call, state, update.email, f"{at}email.", planned, must_change=False)
    if update.phone is not None:
        await plan_phone(call, state, update.phone, f"{at}phone.", planned, must_change=False)
    if update.password is not None:
        pw = update.password
        planned.events += await plan_password(
            call,
            state,
            pw.password,
            pw.hashed_password,
            pw.current_password,
            pw.verification_code,
            at=f"{at}password.",
            paths=(f"{at}password.password", f"{at}password.hashedPassword"),
        )


@service.rpc("UpdateHumanUser", request=UpdateHumanUserRequest)
async def update_human_user(call: Call, req: UpdateHumanUserRequest) -> dict[str, Any]:
    """Change a human user's user name, profile, email, phone or password."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    _human(state)
    planned = Planned()
    plan_username(state, req.username, planned)
    await _plan_human_update(call, state, req, "", planned, names_required=True)
    result = await push_change(call, state, planned.events, planned.unique)
    return {**result, **planned.codes()}


class HumanUpdate(Message):
    profile: Profile | None = None
    email: SetEmail | None = None
    phone: SetPhone | None = None
    password: SetPassword | None = None


class UpdateUserRequest(Message):
    user_id: str = ""
    username: str | None = None
    human: HumanUpdate | None = None
    machine: Machine | None = None


@service.rpc("UpdateUser", request=UpdateUserRequest)
async def update_user(call: Call, req: UpdateUserRequest) -> dict[str, Any]:
    """Change a human's or a machine's fields; only those sent change."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    planned = Planned()
    plan_username(state, req.username, planned)
    if req.human is not None and req.machine is not None:
        raise invalid("human", "set either human or machine, not both")
    if req.human is not None:
        _human(state)
        await _plan_human_update(call, state, req.human, "human.", planned, names_required=False)
    if req.machine is not None:
        try:
            cmd.require_machine(state)
        except cmd.Precondition as exc:
            raise precondition(exc) from None
        changes = {}
        if req.machine.name is not None:
            changes["name"] = checked("machine.name", cmd.check_name, req.machine.name)
        if req.machine.description is not None:
            changes["description"] = checked(
                "machine.description", cmd.check_name, req.machine.description, required=False
            )
        changes = {k: v for k, v in changes.items() if v != getattr(state, k)}
        if changes:
            planned.events.append(ev.MachineChanged(**changes))
    result = await push_change(call, state, planned.events, planned.unique)
    return {"changeDate": result["details"].get("changeDate"), **planned.codes()}


# -- email, phone, password -------------------------------------------------------------------


class SetEmailRequest(SetEmail):
    user_id: str = ""


class SetPhoneRequest(SetPhone):
    user_id: str = ""


class VerifyRequest(Message):
    user_id: str = ""
    verification_code: str = ""


class UserIDOnly(Message):
    user_id: str = ""


@service.rpc("SetEmail", request=SetEmailRequest)
async def set_email(call: Call, req: SetEmailRequest) -> dict[str, Any]:
    """Change the email: verified at once (`isVerified`), or by a code (`returnCode`: returned)."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    _human(state)
    planned = Planned()
    await plan_email(call, state, req, "", planned, must_change=True)
    result = await push_change(call, state, planned.events)
    if planned.email_code:
        result["verificationCode"] = planned.email_code
    return result


@service.rpc("VerifyEmail", request=VerifyRequest)
async def verify_email(call: Call, req: VerifyRequest) -> dict[str, Any]:
    """Mark the email verified with the code SetEmail (or AddHumanUser) made."""
    return await _verify(call, req, "email_code", ev.HumanEmailVerified())


@service.rpc("SetPhone", request=SetPhoneRequest)
async def set_phone(call: Call, req: SetPhoneRequest) -> dict[str, Any]:
    """Change the phone number: verified at once (`isVerified`), or with a code."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    _human(state)
    planned = Planned()
    await plan_phone(call, state, req, "", planned, must_change=True)
    result = await push_change(call, state, planned.events)
    if planned.phone_code:
        result["verificationCode"] = planned.phone_code
    return result


@service.rpc("VerifyPhone", request=VerifyRequest)
async def verify_phone(call: Call, req: VerifyRequest) -> dict[str, Any]:
    """Mark the phone verified with the code SetPhone made."""
    return await _verify(call, req, "phone_code", ev.HumanPhoneVerified())


async def _verify(call: Call, req: VerifyRequest, pending: str, event: Event) -> dict[str, Any]:
    """Push `event` when the request's code is the user's pending `pending` code."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    _human(state)
    if not req.verification_code:
        raise invalid("verificationCode", "is required")
    if not cmd.code_matches(getattr(state, pending), req.verification_code):
        raise invalid("verificationCode", "is wrong or expired")
    return await push_change(call, state, [event])


@service.rpc("RemovePhone", request=UserIDOnly)
async def remove_phone(call: Call, req: UserIDOnly) -> dict[str, Any]:
    """Remove the user's phone number."""
    state = await authorized_user(call, req.user_id, "user.write", self_ok=True)
    _human(state)
    if not state.phone:
        raise ConnectError("failed_precondition", "the user has no phone number")
    return await push_change(call, state, [ev.HumanPhoneRemoved()])


class SetPasswordRequest(Message):
    user_id: str = ""
    new_password: Password | None = None
    current_password: str | None = None
    verification_code: str | None = None


@service.rpc("SetPassword", request=SetPasswordRequest)
async def set_password(call: Call, req: SetPasswordRequest) -> dict[str, Any]:
    """Set a new password, proven by the current one, a PasswordReset code, or the permission."""
    state = await load_user(call, req.user_id)
    _human(state)
    if req.new_password is None:
        raise invalid("newPassword", "is required")
    events = await plan_password(
        call,
        state,
        req.new_password,
        None,
        req.current_password,
        req.verification_code,
        at="",
        paths=("newPassword", "hashedPassword"),
    )
    return await push_change(call, state, events)


class PasswordResetRequest(Message):
    user_id: str = ""
    return_code: dict[str, Any] | None = None
    send_link: dict[str, Any] | None = None


@service.rpc("PasswordReset", request=PasswordResetRequest)
async def password_reset(call: Call, req: PasswordResetRequest) -> dict[str, Any]:
    """Make a password reset code for SetPassword; `returnCode` returns it instead of sending it."""
    state = await authorized_user(call, req.user_id, "user.credential.write", self_ok=True)
    _human(state)
    link = req.send_link or {}
    kind = {"NOTIFICATION_TYPE_SMS": "sms"}.get(str(link.get("notificationType", "")), "email")
    url = link.get("urlTemplate", "")
    if not isinstance(url, str):
        raise invalid("sendLink.urlTemplate", "expected a string")
    code = cmd.new_code()
    event = ev.HumanPasswordCodeAdded(
        code.digest,
        code.expires_at,
        notification_type=kind,
        url_template=url,
        code_returned=req.return_code is not None,
    )
    result = await push_change(call, state, [event])
    if req.return_code is not None:
        result["verificationCode"] = code.code
    return result
