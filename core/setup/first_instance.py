"""The `first_instance` setup step: the instance, its org and its administrators.

From `FirstInstance`: the instance (domain ExternalDomain), its first org, a
human administrator (IAM_OWNER and ORG_OWNER, email verified, asked to change
the password at first login unless told otherwise) and, when
`Org.Machine.Machine.Username` is set, a machine administrator whose personal
access token is written to `Org.Machine.Pat.Path` (mode 0600). Everything is
one push, so a step killed half-way leaves nothing behind and reruns whole.

The credentials are printed once, to standard error, when the instance is
created: the step's recorded result holds ids only.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from donjon.core import ids
from donjon.core.events import AggregateChanges
from donjon.core.identity import members, orgs, secrets, users
from donjon.core.instance import add_instance, list_instances
from donjon.core.errors import ConfigError

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime
    from donjon.core.setup.migrations import StepContext

CREATOR = "SYSTEM"


def _expiration(value: str) -> str:
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            "FirstInstance.Org.Machine.Pat.ExpirationDate: expected an RFC 3339 time such as"
            f" 2030-01-01T00:00:00Z, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _write_secret(path: Path, value: str) -> Path:
    """Write `value` to a temporary file beside `path`, mode 0600; rename it after the push."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(tmp, 0o600)
    return tmp


async def create_first_instance(ctx: StepContext) -> dict[str, Any]:
    runtime = ctx.runtime
    async with runtime.db.read() as conn:
        existing = await list_instances(conn)
    if existing:
        return {"instance_id": existing[0]["id"], "created": False}
    first = runtime.settings.FirstInstance
    org_cfg, human_cfg = first.Org, first.Org.Human
    machine_cfg = org_cfg.Machine
    instance_id, org_id = ids.new_id(), ids.new_id()
    domain = runtime.settings.ExternalDomain
    changes: list[AggregateChanges] = [
        add_instance(instance_id, first.InstanceName, [domain], first.DefaultLanguage),
        orgs.add_org(instance_id, org_id, org_cfg.Name, domain),
    ]
    org_domain = orgs.generated_domain(orgs.check_org_name(org_cfg.Name), domain)
    await _check_password(runtime, human_cfg.Password)

    human_id = ids.new_id()
    email = human_cfg.Email or f"{human_cfg.UserName}@{org_domain}"
    changes.append(
        users.new_user(
            instance_id,
            human_id,
            org_id,
            [
                users.HumanAdded(
                    username=human_cfg.UserName,
                    first_name=human_cfg.FirstName,
                    last_name=human_cfg.LastName,
                    preferred_language=first.DefaultLanguage,
                    email=email,
                    email_verified=True,
                    password_hash=await runtime.passwords.hash(human_cfg.Password),
                    password_change_required=human_cfg.PasswordChangeRequired,
                )
            ],
            human_cfg.UserName,
        )
    )
    admins = [human_id]

    pat = ""
    pat_file: Path | None = None
    machine_id = ""
    if machine_cfg.Machine.Username:
        machine_id = ids.new_id()
        events: list[Any] = [
            users.MachineAdded(
                username=machine_cfg.Machine.Username,
                name=machine_cfg.Machine.Name or machine_cfg.Machine.Username,
            )
        ]
        if machine_cfg.Pat.Path:
            pat = secrets.new_secret()
            events.append(
                users.PersonalAccessTokenAdded(
                    token_id=ids.new_id(),
                    digest=secrets.digest(pat),
                    expiration=_expiration(machine_cfg.Pat.ExpirationDate),
                )
            )
            pat_file = Path(machine_cfg.Pat.Path)
        changes.append(
            users.new_user(instance_id, machine_id, org_id, events, machine_cfg.Machine.Username)
        )
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

    tmp = _write_secret(pat_file, pat) if pat_file else None
    try:
        await runtime.store.push(changes, creator=CREATOR)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None and pat_file is not None:
        tmp.replace(pat_file)
    _announce(runtime, human_cfg.UserName, org_domain, pat_file)
    return {
        "instance_id": instance_id,
        "org_id": org_id,
        "human_admin_id": human_id,
        "machine_admin_id": machine_id,
        "created": True,
    }


async def _check_password(runtime: Runtime, password: str) -> None:
    """The configured password must meet the instance's default complexity policy."""
    from donjon.core.identity import policies

    problems = policies.password_problems(
        policies.default_password_complexity(runtime.settings), password
    )
    if problems:
        raise ConfigError(
            f"FirstInstance.Org.Human.Password: expected a password that {'; '.join(problems)}"
        )


def _announce(runtime: Runtime, username: str, org_domain: str, pat_file: Path | None) -> None:
    human = runtime.settings.FirstInstance.Org.Human
    lines = [
        "",
        "donjon: the first instance is ready",
        f"  console:  {runtime.settings.external_url}/ui/console/",
        f"  log in as {username}@{org_domain} with the password {human.Password!r}"
        + (" (you will be asked to change it)" if human.PasswordChangeRequired else ""),
    ]
    if pat_file is not None:
        token = pat_file.read_text().strip()
        lines.append(f"  API token (personal access token of the service account, in {pat_file}):")
        lines.append(f"    {token}")
    lines.append("")
    print("\n".join(lines), file=sys.stderr, flush=True)
