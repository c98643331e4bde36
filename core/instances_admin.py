"""Creating an instance: the tenant, its first org and its administrators, in one push.

ZITADEL creates instances through its System API; donjon's operators do it
with `donjon instances create` (and setup does it once for `FirstInstance`).
Both come here: `create_instance` validates a `NewInstance`, then pushes the
instance with its domains, its org (with the org's generated domain), a human
administrator (IAM_OWNER and ORG_OWNER, email verified) and optionally a
machine administrator with a personal access token written to a file
(mode 0600). Everything is one push: a domain another instance serves, or a
crash half-way, leaves nothing behind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from donjon.core import ids
from donjon.core.errors import DonjonError
from donjon.core.events import AggregateChanges
from donjon.core.identity import members, orgs, policies, secrets, users
from donjon.core.instance import add_instance, check_domain, check_instance_name

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

SYSTEM = "SYSTEM"
_USERNAME = re.compile(r"\S{1,200}")


class InvalidInstance(DonjonError):
    """A value of a `NewInstance` is wrong: `field` names it (a `NewInstance` path)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class HumanAdmin:
    username: str
    password: str
    first_name: str = "donjon"
    last_name: str = "Admin"
    # Empty: <username>@<the org's generated domain>. Marked verified.
    email: str = ""
    password_change_required: bool = True


@dataclass(frozen=True)
class MachineAdmin:
    username: str
    name: str = ""
    # Where the personal access token is written (mode 0600); None: no token.
    pat_path: Path | None = None
    # RFC 3339; empty: the token never expires.
    pat_expiration: str = ""


@dataclass(frozen=True)
class NewInstance:
    """What an instance is created with. The first domain is the primary one."""

    name: str
    domains: tuple[str, ...]
    org_name: str
    human: HumanAdmin
    machine: MachineAdmin | None = None
    default_language: str = "en"


@dataclass(frozen=True)
class CreatedInstance:
    instance_id: str
    org_id: str
    org_domain: str
    human_admin_id: str
    machine_admin_id: str = ""
    pat_file: Path | None = None

    def info(self) -> dict[str, Any]:
        """The ids, as a setup step records them (never a credential)."""
        return {
            "instance_id": self.instance_id,
            "org_id": self.org_id,
            "human_admin_id": self.human_admin_id,
            "machine_admin_id": self.machine_admin_id,
        }


def normalise_expiration(value: str, field: str = "machine.pat_expiration") -> str:
    """An RFC 3339 time in UTC with `Z` (empty stays empty); InvalidInstance otherwise."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInstance(
            field, f"expected an RFC 3339 time such as 2030-01-01T00:00:00Z, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _checked(runtime: Runtime, spec: NewInstance) -> tuple[str, list[str], str]:
    """(name, domains, org name) of `spec`, trimmed; InvalidInstance at the first problem."""
    try:
        name = check_instance_name(spec.name)
    except ValueError as exc:
        raise InvalidInstance("name", str(exc)) from None
    if not spec.domains:
        raise InvalidInstance("domains", "at least one domain is needed")
    domains: list[str] = []
    for i, domain in enumerate(spec.domains):
        try:
            checked = check_domain(domain)
        except ValueError as exc:
            raise InvalidInstance(f"domains.{i}", str(exc)) from None
        if checked not in domains:
            domains.append(checked)
    try:
        org_name = orgs.check_org_name(spec.org_name)
    except ValueError as exc:
        raise InvalidInstance("org_name", str(exc)) from None
    if not _USERNAME.fullmatch(spec.human.username):
        raise InvalidInstance("human.username", "expected 1 to 200 characters without spaces")
    problems = policies.password_problems(
        policies.default_password_complexity(runtime.settings), spec.human.password
    )
    if problems:
        raise InvalidInstance("human.password", f"expected a password that {'; '.join(problems)}")
    if spec.machine is not None:
        if not _USERNAME.fullmatch(spec.machine.username):
            raise InvalidInstance("machine.username", "expected 1 to 200 characters without spaces")
        if spec.machine.username.lower() == spec.human.username.lower():
            raise InvalidInstance("machine.username", "must differ from the human's user name")
    return name, domains, org_name


def write_secret(path: Path, value: str) -> Path:
    """Write `value` to a temporary file beside `path`, mode 0600; rename it after the push."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(tmp, 0o600)
    return tmp


async def create_instance(
    runtime: Runtime, spec: NewInstance, *, creator: str = SYSTEM
) -> CreatedInstance:
    """Create the instance of `spec` in one push; return its ids.

    Raises InvalidInstance for a bad value (nothing is written), and
    UniqueConstraintError when a domain is already served by an instance.
    The token file, when asked for, appears only once the push committed.
    """
    name, domains, org_name = _checked(runtime, spec)
    expiration = (
        normalise_expiration(spec.machine.pat_expiration) if spec.machine is not None else ""
    )
    instance_id, org_id = ids.new_id(), ids.new_id()
    primary = domains[0]
    changes: list[AggregateChanges] = [
        add_instance(instance_id, name, domains, spec.default_language),
        orgs.add_org(instance_id, org_id, org_name, primary),
    ]
    org_domain = orgs.generated_domain(org_name, primary)

    human = spec.human
    human_id = ids.new_id()
    changes.append(
        users.new_user(
            instance_id,
            human_id,
            org_id,
            [
                users.HumanAdded(
                    username=human.username,
                    first_name=human.first_name,
                    last_name=human.last_name,
                    preferred_language=spec.default_language,
                    email=human.email or f"{human.username}@{org_domain}",
                    email_verified=True,
                    password_hash=await runtime.passwords.hash(human.password),
                    password_change_required=human.password_change_required,
                )
            ],
            human.username,
        )
    )
    admins = [human_id]

    machine_id, pat, pat_file = "", "", None
    if spec.machine is not None:
        machine = spec.machine
        machine_id = ids.new_id()
        events: list[Any] = [
            users.MachineAdded(username=machine.username, name=machine.name or machine.username)
        ]
        if machine.pat_path is not None:
            pat = secrets.new_secret()
            events.append(
                users.PersonalAccessTokenAdded(
                    token_id=ids.new_id(), digest=secrets.digest(pat), expiration=expiration
                )
            )
            pat_file = machine.pat_path
        changes.append(users.new_user(instance_id, machine_id, org_id, events, machine.username))
        admins.append(machine_id)

    for user_id in admins:
        changes.append(
            members.add_member(
                members.INSTANCE, instance_id, instance_id, instance_id, user_id, ["IAM_OWNER"]
            )
        )
        changes.append(
            members.add_member(members.ORG, instance_id, org_id, org_id, user_id, ["ORG_OWNER"])
        )

    tmp = write_secret(pat_file, pat) if pat_file is not None else None
    try:
        await runtime.store.push(changes, creator=creator)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None and pat_file is not None:
        tmp.replace(pat_file)
    return CreatedInstance(instance_id, org_id, org_domain, human_id, machine_id, pat_file)


def generated_password() -> str:
    """A random password that meets any sensible complexity policy (shown once)."""
    return secrets.new_secret()[:24] + "aA1!"
