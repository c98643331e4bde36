"""The checks of a session: what proves a factor, and the registry plugins add to.

CreateSession and SetSession (and the hosted login) send `checks` (`user`,
`password`, `webAuthN`, `idpIntent`, `totp`, `otpSms`, `otpEmail`,
`recoveryCode`) and `challenges` (`webAuthN`, `otpSms`, `otpEmail`). Each
field is run by the `SessionCheck` registered for it through the
`register_session_checks` hook: the core registers `user` and `password`;
the MFA plugins register the others. A field no plugin handles answers
`unimplemented` naming it.

Checks run in the order of `CHECK_FIELDS` (the user first: the others need
it), then challenges. A check returns the events to record on the session
(the factor events of `sessions`, such as `SessionTOTPChecked`) or raises a
`ConnectError` whose message starts with its field's path; then nothing is
recorded on the session. A check may record on other aggregates itself, as
the password check records failed attempts and the lockout on the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import select

from donjon.core.api.connect import ConnectError, invalid
from donjon.core.errors import PluginError
from donjon.core.events import Event
from donjon.core.identity import orgs, user_password, user_reads
from donjon.core.identity.sessions import (
    SessionPasswordChecked,
    SessionState,
    SessionUserChecked,
    format_time,
)
from donjon.core.identity.user_password import PasswordCheck
from donjon.core.identity.users import (
    ACTIVE,
    HUMAN,
    INITIAL,
    LOCKED,
    users_table,
)
from donjon.core.plugins import collect_by_plugin

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

# The SessionService's fields, in the order ZITADEL runs them.
CHECK_FIELDS = (
    "user",
    "password",
    "idpIntent",
    "webAuthN",
    "totp",
    "otpSms",
    "otpEmail",
    "recoveryCode",
)
CHALLENGE_FIELDS = ("webAuthN", "otpSms", "otpEmail")


@dataclass(frozen=True)
class CheckContext:
    """What a check knows: the session as stored, and its user so far.

    `user_id` / `user_org` are the session's user, including one checked by
    an earlier check of the same request (empty when there is none yet).
    `path` is the field's JSON path (`checks.totp`, `challenges.otpSms`):
    start error messages with it. `now` is the time of the request.
    """

    runtime: Runtime
    instance_id: str
    session: SessionState
    user_id: str
    user_org: str
    path: str
    now: datetime


@dataclass(frozen=True)
class CheckOutcome:
    """What a passed check records on the session, and for a challenge what
    the response carries under `challenges.<name>`."""

    events: list[Event] = field(default_factory=list)
    challenge: Any = None


CheckRunner = Callable[[CheckContext, dict[str, Any]], Awaitable[CheckOutcome]]


@dataclass(frozen=True)
class SessionCheck:
    """The handler of one field of `checks` (or of `challenges` when `challenge`).

    `run(context, value)` gets the field's JSON value (camelCase keys, as sent)
    and returns a `CheckOutcome`, or raises `ConnectError`.
    """

    name: str
    run: CheckRunner
    challenge: bool = False


# The registry of each plugin manager, collected on first use.
_registries: WeakKeyDictionary[Any, dict[tuple[bool, str], SessionCheck]] = WeakKeyDictionary()


def registry(runtime: Runtime) -> dict[tuple[bool, str], SessionCheck]:
    """The checks every enabled plugin registered, by (challenge, name).

    PluginError names the plugin when a check is for no known field or a
    field is taken twice.
    """
    found = _registries.get(runtime.pm)
    if found is not None:
        return found
    checks: dict[tuple[bool, str], SessionCheck] = {}
    owners: dict[tuple[bool, str], str] = {}
    for plugin, check in collect_by_plugin(
        runtime.pm.hook.register_session_checks, settings=runtime.settings
    ):
        known = CHALLENGE_FIELDS if check.challenge else CHECK_FIELDS
        kind = "challenges" if check.challenge else "checks"
        if check.name not in known:
            raise PluginError(
                f"plugin {plugin}: register_session_checks: {kind}.{check.name} is not a field"
                f" of the SessionService (known: {', '.join(known)})"
            )
        key = (check.challenge, check.name)
        if key in owners:
            raise PluginError(
                f"plugin {plugin}: register_session_checks: {kind}.{check.name} is already"
                f" handled by plugin {owners[key]}"
            )
        checks[key], owners[key] = check, plugin
    _registries[runtime.pm] = checks
    return checks


async def run_checks(
    runtime: Runtime,
    session: SessionState,
    checks: dict[str, Any],
    challenges: dict[str, Any],
    now: datetime,
) -> tuple[list[Event], dict[str, Any]]:
    """Run every check and challenge sent: (events for the session, the response's
    `challenges`). The first failing check raises; then nothing is recorded."""
    handlers = registry(runtime)
    user_id, user_org = session.user_id, session.user_org
    events: list[Event] = []
    answers: dict[str, Any] = {}
    for challenge, fields, section in (
        (False, CHECK_FIELDS, checks),
        (True, CHALLENGE_FIELDS, challenges),
    ):
        kind = "challenges" if challenge else "checks"
        for name in fields:
            if name not in section:
                continue
            handler = handlers.get((challenge, name))
            path = f"{kind}.{name}"
            if handler is None:
                raise ConnectError("unimplemented", f"{path}: not supported by this server yet")
            context = CheckContext(
                runtime, session.instance_id, session, user_id, user_org, path, now
            )
            outcome = await handler.run(context, section[name] or {})
            for event in outcome.events:
                if isinstance(event, SessionUserChecked):
                    user_id, user_org = event.user_id, event.user_resource_owner
            events.extend(outcome.events)
            if challenge and outcome.challenge is not None:
                answers[name] = outcome.challenge
    return events, answers


# -- the core's checks ---------------------------------------------------------------------


async def check_user(ctx: CheckContext, value: dict[str, Any]) -> CheckOutcome:
    """`checks.user`: `userId` or `loginName` of an active human of an active org."""
    user_id = (value.get("userId") or "").strip()
    login_name = (value.get("loginName") or "").strip()
    if bool(user_id) == bool(login_name):
        raise invalid(ctx.path, "set either userId or loginName")
    where = f"{ctx.path}.userId" if user_id else f"{ctx.path}.loginName"
    async with ctx.runtime.db.read() as conn:
        if user_id:
            found = (
                await conn.execute(
                    select(users_table).where(
                        users_table.c.instance_id == ctx.instance_id, users_table.c.id == user_id
                    )
                )
            ).first()
            user = dict(found._mapping) if found else None
        else:
            user = await user_reads.user_by_login_name(conn, ctx.instance_id, login_name)
        org = (
            await orgs.get_org(conn, ctx.instance_id, str(user["resource_owner"])) if user else None
        )
    if user is None or org is None:
        raise ConnectError("not_found", f"{where}: user not found")
    if ctx.user_id and ctx.user_id != user["id"]:
        raise invalid(where, "the session belongs to another user; create a new session")
    if user["type"] != HUMAN:
        raise ConnectError("failed_precondition", f"{where}: a machine user cannot log in")
    if user["state"] == LOCKED:
        raise ConnectError("failed_precondition", f"{where}: the user is locked")
    if user["state"] not in (ACTIVE, INITIAL):
        raise ConnectError("failed_precondition", f"{where}: the user is not active")
    if org["state"] != orgs.ACTIVE:
        raise ConnectError("failed_precondition", f"{where}: the user's organization is not active")
    checked = SessionUserChecked(
        user_id=str(user["id"]),
        user_resource_owner=str(user["resource_owner"]),
        checked_at=format_time(ctx.now),
        preferred_language=str(user.get("preferred_language") or ""),
    )
    return CheckOutcome([checked])


async def check_password(ctx: CheckContext, value: dict[str, Any]) -> CheckOutcome:
    """`checks.password`: the user's password, recorded on the user (failures, lockout)."""
    password = value.get("password") or ""
    if not ctx.user_id:
        raise ConnectError("failed_precondition", f"{ctx.path}: check the user first (checks.user)")
    if not password:
        raise invalid(f"{ctx.path}.password", "must not be empty")
    outcome = await user_password.password_check(
        ctx.runtime, ctx.instance_id, ctx.user_id, password
    )
    if outcome == PasswordCheck.OK:
        return CheckOutcome([SessionPasswordChecked(checked_at=format_time(ctx.now))])
    if outcome == PasswordCheck.WRONG:
        raise invalid(f"{ctx.path}.password", "the password is invalid")
    if outcome == PasswordCheck.NOT_FOUND:
        raise ConnectError("not_found", f"{ctx.path}: the session's user no longer exists")
    problem = {
        PasswordCheck.LOCKED: "the user is locked",
        PasswordCheck.INACTIVE: "the user is not active",
        PasswordCheck.NO_PASSWORD: "the user has no password",
    }[outcome]
    raise ConnectError("failed_precondition", f"{ctx.path}: {problem}")


CORE_CHECKS = [SessionCheck("user", check_user), SessionCheck("password", check_password)]
