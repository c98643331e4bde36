"""The `first_instance` setup step: the instance, its org and its administrators.

From `FirstInstance`: the instance (domain ExternalDomain), its first org, a
human administrator (IAM_OWNER and ORG_OWNER, email verified, asked to change
the password at first login unless told otherwise) and, when
`Org.Machine.Machine.Username` is set, a machine administrator whose personal
access token is written to `Org.Machine.Pat.Path` (mode 0600). Everything is
one push, so a step killed half-way leaves nothing behind and reruns whole.

The credentials are logged once (INFO), when the instance is
created: the step's recorded result holds ids only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from donjon.core.errors import ConfigError
from donjon.core.instance import list_instances
from donjon.core.instances_admin import (
    HumanAdmin,
    InvalidInstance,
    MachineAdmin,
    NewInstance,
    create_instance,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime
    from donjon.core.settings import Settings
    from donjon.core.setup.migrations import StepContext

CREATOR = "SYSTEM"

log = logging.getLogger(__name__)

# Where each value of a NewInstance comes from in the configuration.
CONFIG_KEYS = {
    "name": "FirstInstance.InstanceName",
    "domains.0": "ExternalDomain",
    "org_name": "FirstInstance.Org.Name",
    "human.username": "FirstInstance.Org.Human.UserName",
    "human.password": "FirstInstance.Org.Human.Password",
    "machine.username": "FirstInstance.Org.Machine.Machine.Username",
    "machine.pat_expiration": "FirstInstance.Org.Machine.Pat.ExpirationDate",
}


def first_instance_spec(settings: Settings) -> NewInstance:
    """The instance `FirstInstance` describes, on ExternalDomain."""
    first = settings.FirstInstance
    org_cfg, human_cfg = first.Org, first.Org.Human
    machine_cfg = org_cfg.Machine
    machine = None
    if machine_cfg.Machine.Username:
        machine = MachineAdmin(
            username=machine_cfg.Machine.Username,
            name=machine_cfg.Machine.Name or machine_cfg.Machine.Username,
            pat_path=Path(machine_cfg.Pat.Path) if machine_cfg.Pat.Path else None,
            pat_expiration=machine_cfg.Pat.ExpirationDate,
        )
    return NewInstance(
        name=first.InstanceName,
        domains=(settings.ExternalDomain,),
        org_name=org_cfg.Name,
        human=HumanAdmin(
            username=human_cfg.UserName,
            password=human_cfg.Password,
            first_name=human_cfg.FirstName,
            last_name=human_cfg.LastName,
            email=human_cfg.Email,
            password_change_required=human_cfg.PasswordChangeRequired,
        ),
        machine=machine,
        default_language=first.DefaultLanguage,
    )


async def create_first_instance(ctx: StepContext) -> dict[str, Any]:
    runtime = ctx.runtime
    async with runtime.db.read() as conn:
        existing = await list_instances(conn)
    if existing:
        return {"instance_id": existing[0]["id"], "created": False}
    try:
        created = await create_instance(
            runtime, first_instance_spec(runtime.settings), creator=CREATOR
        )
    except InvalidInstance as exc:
        key = CONFIG_KEYS.get(exc.field, f"FirstInstance ({exc.field})")
        raise ConfigError(f"{key}: {exc.problem}") from None
    _announce(
        runtime,
        runtime.settings.FirstInstance.Org.Human.UserName,
        created.org_domain,
        created.pat_file,
    )
    return {**created.info(), "created": True}


def _announce(runtime: Runtime, username: str, org_domain: str, pat_file: Path | None) -> None:
    human = runtime.settings.FirstInstance.Org.Human
    lines = [
        "the first instance is ready",
        # No console UI yet: the hosted login (sign in, account) and the API.
        f"  sign in:  {runtime.settings.external_url}/ui/login/",
        f"  API:      {runtime.settings.external_url}/zitadel.<pkg>.v2.<Service>/<Method>"
        f" (OpenAPI: {runtime.settings.external_url}/openapi/management.json)",
        f"  log in as {username}@{org_domain} with the password {human.Password!r}"
        + (" (you will be asked to change it)" if human.PasswordChangeRequired else ""),
    ]
    if pat_file is not None:
        token = pat_file.read_text().strip()
        lines.append(f"  API token (personal access token of the service account, in {pat_file}):")
        lines.append(f"    {token}")
    # Through the log, so that JSON logs stay one object per line.
    log.info("\n".join(lines))
