"""UserService: AddHumanUser and CreateUser (human or machine).

A new user belongs to the org the request names (`organization.orgId` or
`.orgDomain`, `organizationId`), else to the org of the `x-zitadel-orgid`
header, else to the caller's; that org must exist in the instance and the
caller needs `user.write` on it. `plan_human` is also what AddOrganization
uses for administrators created with the org.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from donjon.core import ids
from donjon.core.api.connect import Call, ConnectError, Message, decode, details, invalid, timestamp
from donjon.core.api.user_service_shared import (
    HashedPassword,
    MetadataEntry,
    Password,
    Profile,
    SetEmail,
    SetPassword,
    SetPhone,
    gender_of,
    service,
)
from donjon.core.api.user_service_shared import field as checked
from donjon.core.events import AggregateChanges, Event
from donjon.core.identity import orgs
from donjon.core.identity import user_commands as cmd
from donjon.core.identity import user_events as ev
from donjon.core.identity import user_metadata as md
from donjon.core.identity.user_password import (
    PasswordRejected,
    check_imported_hash,
    hash_new_password,
)
from donjon.core.identity.users import HumanAdded, MachineAdded, UserState, new_user


class Organization(Message):
    org_id: str | None = None
    org_domain: str | None = None


class AddHumanUserRequest(Message):
    user_id: str | None = None
    username: str | None = None
    organization: Organization | None = None
    profile: Profile | None = None
    email: SetEmail | None = None
    phone: SetPhone | None = None
    metadata: list[MetadataEntry] = []
    idp_links: list[dict[str, Any]] = []
    totp_secret: str | None = None
    hashed_password: HashedPassword | None = None
    password: Password | None = None


class Human(Message):
    profile: Profile | None = None
    email: SetEmail | None = None
    phone: SetPhone | None = None
    password: SetPassword | None = None


class Machine(Message):
    name: str | None = None
    description: str | None = None


class CreateUserRequest(Message):
    organization_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    human: Human | None = None
    machine: Machine | None = None


# -- resolving the org and the id ------------------------------------------------------------


async def target_org(call: Call, org_id: str | None, org_domain: str | None, path: str) -> str:
    """The org a new user goes to (see the module docstring), checked to exist."""
    async with call.runtime.db.read() as conn:
        if org_id:
            if await orgs.get_org(conn, call.instance_id, org_id) is None:
                raise invalid(f"{path}Id", f"no organization {org_id} in this instance")
            return org_id
        if org_domain:
            found = await orgs.org_by_domain(conn, call.instance_id, org_domain)
            if found is None:
                raise invalid(f"{path}Domain", f"no organization with the domain {org_domain}")
            return found
        context = call.context_org()
        if not context or await orgs.get_org(conn, call.instance_id, context) is None:
            raise ConnectError("not_found", f"organization {context or '(none)'} not found")
        return context


async def new_user_id(call: Call, user_id: str | None, path: str) -> str:
    """The id asked for (already_exists when taken, even by a removed user), or a new one."""
    if not user_id:
        return ids.new_id()
    user_id = user_id.strip()
    if not user_id or len(user_id) > 200 or any(c.isspace() for c in user_id):
        raise invalid(path, "must be 1 to 200 characters without spaces")
    if (await UserState.load(call.runtime.store, call.instance_id, user_id)).sequence:
        raise ConnectError(
            "already_exists", f"a user with the id {user_id} exists (Errors.User.AlreadyExists)"
        )
    return user_id


# -- humans ------------------------------------------------------------------------------------


@dataclass
class PlannedUser:
    """A new user's push, and the codes to hand back."""

    user_id: str
    changes: AggregateChanges
    email_code: str = ""
    phone_code: str = ""


def code_events(
    kind: str, verified: bool, return_code: bool, url_template: str = ""
) -> tuple[list[Event], str]:
    """The verification of a new email or phone: verified, or a code (returned when asked)."""
    if verified:
        return [ev.HumanEmailVerified() if kind == "email" else ev.HumanPhoneVerified()], ""
    code = cmd.new_code()
    if kind == "email":
        event: Event = ev.HumanEmailCodeAdded(
            code.digest, code.expires_at, url_template=url_template, code_returned=return_code
        )
    else:
        event = ev.HumanPhoneCodeAdded(code.digest, code.expires_at, code_returned=return_code)
    return [event], code.code if return_code else ""


async def password_hash(
    call: Call,
    org_id: str,
    password: Password | None,
    hashed: HashedPassword | None,
    paths: tuple[str, str],
) -> tuple[str, bool]:
    """(hash, change required) of `password` (checked, hashed) or `hashedPassword` (imported)."""
    if password is not None and hashed is not None:
        raise invalid(paths[0], f"set either {paths[0]} or {paths[1]}, not both")
    try:
        if password is not None:
            encoded = await hash_new_password(
                call.runtime, call.instance_id, org_id, password.password
            )
            return encoded, password.change_required
        if hashed is not None:
            return check_imported_hash(hashed.hash), hashed.change_required
    except PasswordRejected as exc:
        path = f"{paths[0]}.password" if password is not None else f"{paths[1]}.hash"
        raise invalid(path, str(exc)) from None
    return "", False


async def plan_human(
    call: Call,
    org_id: str,
    *,
    user_id: str | None,
    username: str | None,
    profile: Profile | None,
    email: SetEmail | None,
    phone: SetPhone | None,
    password: Password | None,
    hashed: HashedPassword | None,
    metadata: list[MetadataEntry],
    at: str = "",
    top: str | None = None,
    password_paths: tuple[str, str] = ("password", "hashedPassword"),
) -> PlannedUser:
    """Check a new human user's input and build its push (nothing is written here).

    For error messages: `at` is the JSON path the human's fields sit under
    (`human.` for CreateUser, `admins.0.human.` for AddOrganization), `top`
    the one of `userId` and `username` (default: `at`).
    """
    top = at if top is None else top
    if profile is None:
        raise invalid(f"{at}profile", "is required")
    first = checked(f"{at}profile.givenName", cmd.check_name, profile.given_name or "")
    last = checked(f"{at}profile.familyName", cmd.check_name, profile.family_name or "")
    nick = checked(f"{at}profile.nickName", cmd.check_name, profile.nick_name or "", required=False)
    display = checked(
        f"{at}profile.displayName", cmd.check_name, profile.display_name or "", required=False
    )
    language = checked(
        f"{at}profile.preferredLanguage", cmd.check_language, profile.preferred_language or ""
    )
    gender = gender_of(f"{at}profile.gender", profile.gender) or ""
    if email is None:
        raise invalid(f"{at}email", "is required")
    address = checked(f"{at}email.email", cmd.check_email, email.email or "")
    name = checked(f"{top}username", cmd.check_username, username or address)
    number = ""
    if phone is not None and (phone.phone or phone.is_verified):
        number = checked(f"{at}phone.phone", cmd.check_phone, phone.phone or "")
    entries = [
        (
            checked(f"{at}metadata.{i}.key", md.check_key, m.key),
            checked(f"{at}metadata.{i}.value", md.check_value, m.value),
        )
        for i, m in enumerate(metadata)
    ]
    paths = (f"{at}{password_paths[0]}", f"{at}{password_paths[1]}")
    new_id = await new_user_id(call, user_id, f"{top}userId")
    encoded, change_required = await password_hash(call, org_id, password, hashed, paths)

    email_events, email_code = code_events(
        "email",
        bool(email.is_verified),
        email.return_code is not None,
        (email.send_code.url_template or "") if email.send_code else "",
    )
    phone_events: list[Event] = []
    phone_code = ""
    if number and phone is not None:
        phone_events, phone_code = code_events(
            "phone", bool(phone.is_verified), phone.return_code is not None
        )
    added = HumanAdded(
        username=name,
        first_name=first,
        last_name=last,
        nick_name=nick,
        display_name=display or cmd.default_display_name(first, last),
        preferred_language=language,
        gender=gender,
        email=address,
        phone=number,
        password_hash=encoded,
        password_change_required=change_required,
    )
    events: list[Event] = [
        added,
        *email_events,
        *phone_events,
        *(md.MetadataSet(key=k, value=v) for k, v in entries),
    ]
    return PlannedUser(
        new_id, new_user(call.instance_id, new_id, org_id, events, name), email_code, phone_code
    )


def unsupported(req: AddHumanUserRequest) -> None:
    if req.idp_links:
        raise ConnectError(
            "unimplemented", "idpLinks: identity provider links are not supported yet"
        )
    if req.totp_secret:
        raise ConnectError("unimplemented", "totpSecret: TOTP is not supported yet")


def codes(planned: PlannedUser) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if planned.email_code:
        out["emailCode"] = planned.email_code
    if planned.phone_code:
        out["phoneCode"] = planned.phone_code
    return out


@service.rpc("AddHumanUser", request=AddHumanUserRequest)
async def add_human_user(call: Call, req: AddHumanUserRequest) -> dict[str, Any]:
    """Create a human user with profile, email, optional phone, password and metadata."""
    org = req.organization or Organization()
    org_id = await target_org(call, org.org_id, org.org_domain, "organization.org")
    await call.require("user.write", org_id=org_id)
    unsupported(req)
    planned = await plan_human_request(call, org_id, req)
    stored = await call.runtime.store.push(planned.changes, creator=call.user_id)
    return {"userId": planned.user_id, "details": details(stored), **codes(planned)}


async def plan_human_request(
    call: Call, org_id: str, req: AddHumanUserRequest, at: str = ""
) -> PlannedUser:
    """`plan_human` for an AddHumanUserRequest; `at` prefixes the paths in its errors."""
    return await plan_human(
        call,
        org_id,
        user_id=req.user_id,
        username=req.username,
        profile=req.profile,
        email=req.email,
        phone=req.phone,
        password=req.password,
        hashed=req.hashed_password,
        metadata=req.metadata,
        at=at,
    )


def admin_request(data: dict[str, Any], at: str) -> AddHumanUserRequest:
    """An AddOrganization `admins[].human` as an AddHumanUserRequest; errors name `at`."""
    try:
        return decode(AddHumanUserRequest, msgspec.json.encode(data))
    except ConnectError as exc:
        raise ConnectError(exc.code, f"{at}{exc.message}") from None


async def plan_org_admin(call: Call, org_id: str, data: dict[str, Any], at: str) -> PlannedUser:
    """A human administrator of a new org (AddOrganization): its checked push, not yet written.

    `at` is the path of the human in the request (`admins.0.human.`). The org
    is created in the same push, so it is not looked up.
    """
    req = admin_request(data, at)
    unsupported(req)
    return await plan_human_request(call, org_id, req, at)


# -- CreateUser ------------------------------------------------------------------------------


async def plan_machine(call: Call, org_id: str, req: CreateUserRequest) -> PlannedUser:
    machine = req.machine or Machine()
    name = checked("machine.name", cmd.check_name, machine.name or "")
    description = checked(
        "machine.description", cmd.check_name, machine.description or "", required=False
    )
    user_id = await new_user_id(call, req.user_id, "userId")
    username = checked("username", cmd.check_username, req.username or user_id)
    added = MachineAdded(username=username, name=name, description=description)
    return PlannedUser(user_id, new_user(call.instance_id, user_id, org_id, [added], username))


@service.rpc("CreateUser", request=CreateUserRequest)
async def create_user(call: Call, req: CreateUserRequest) -> dict[str, Any]:
    """Create a human or a machine user (`human` or `machine`)."""
    org_id = await target_org(call, req.organization_id, None, "organization")
    await call.require("user.write", org_id=org_id)
    if (req.human is None) == (req.machine is None):
        raise invalid("human", "set exactly one of human or machine")
    if req.human is not None:
        h = req.human
        pw = h.password or SetPassword()
        planned = await plan_human(
            call,
            org_id,
            user_id=req.user_id,
            username=req.username,
            profile=h.profile,
            email=h.email,
            phone=h.phone,
            password=pw.password,
            hashed=pw.hashed_password,
            metadata=[],
            at="human.",
            top="",
            password_paths=("password.password", "password.hashedPassword"),
        )
    else:
        planned = await plan_machine(call, org_id, req)
    stored = await call.runtime.store.push(planned.changes, creator=call.user_id)
    created = stored[0].created_at if stored else datetime.now(UTC)
    return {"id": planned.user_id, "creationDate": timestamp(created), **codes(planned)}
