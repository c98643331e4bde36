"""`donjon instances create | list`: operators create and see instances (tenants).

ZITADEL does this through its System API; donjon through the command line,
on the store the configuration names. `create` makes what the first
instance has (see `donjon.core.instances_admin`): the instance on its
domains, its first org, a human administrator and, with `--machine-username`,
a service account whose personal access token goes to `--pat-path` (mode
0600). It prints the ids, and the administrator's password when it was
generated (shown this once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from donjon.core.cli import config_option, fail_cleanly, run, settings_from
from donjon.core.errors import DonjonError, UniqueConstraintError
from donjon.core.instance import instance_domains_table, list_instances
from donjon.core.instances_admin import (
    CreatedInstance,
    HumanAdmin,
    InvalidInstance,
    MachineAdmin,
    NewInstance,
    create_instance,
    generated_password,
)
from donjon.core.runtime import build_runtime

# The option behind each value of a NewInstance, to name it in an error.
OPTIONS = {
    "name": "--name",
    "domains": "--domain",
    "org_name": "--org-name",
    "human.username": "--admin-username",
    "human.password": "--admin-password",
    "machine.username": "--machine-username",
    "machine.pat_expiration": "--pat-expiration",
}


def _option(field: str) -> str:
    """The option of a NewInstance field (`domains.1` is the second --domain)."""
    return OPTIONS.get("domains" if field.startswith("domains") else field, field)


@click.group()
def instances() -> None:
    """Create and list instances (tenants), as ZITADEL's System API does."""


@instances.command("create")
@click.option("--name", required=True, help="The instance's display name.")
@click.option(
    "--domain",
    "domains",
    required=True,
    multiple=True,
    help="A domain that routes to the instance (repeatable; the first is primary).",
)
@click.option("--org-name", help="Its first organization's name (default: --name).")
@click.option("--admin-username", default="admin", show_default=True)
@click.option(
    "--admin-password",
    envvar="DONJON_INSTANCE_ADMIN_PASSWORD",
    help="The human administrator's password (or DONJON_INSTANCE_ADMIN_PASSWORD);"
    " generated and printed once when absent.",
)
@click.option("--admin-email", default="", help="Default: <username>@<the org's domain>.")
@click.option("--admin-first-name", default="donjon", show_default=True)
@click.option("--admin-last-name", default="Admin", show_default=True)
@click.option(
    "--password-change-required/--no-password-change-required",
    default=True,
    show_default=True,
    help="Ask the administrator for a new password at the first login.",
)
@click.option("--machine-username", help="Also create a service account (IAM_OWNER, ORG_OWNER).")
@click.option("--machine-name", default="", help="The service account's display name.")
@click.option(
    "--pat-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the service account's personal access token here (mode 0600).",
)
@click.option("--pat-expiration", default="", help="RFC 3339; default: the token never expires.")
@click.option("--language", default="en", show_default=True, help="The default language.")
@config_option
@fail_cleanly
def instances_create(
    name: str,
    domains: tuple[str, ...],
    org_name: str | None,
    admin_username: str,
    admin_password: str | None,
    admin_email: str,
    admin_first_name: str,
    admin_last_name: str,
    password_change_required: bool,
    machine_username: str | None,
    machine_name: str,
    pat_path: Path | None,
    pat_expiration: str,
    language: str,
    configs: tuple[str, ...],
) -> None:
    """Create an instance with its org and administrators, in one step."""
    if (pat_path or pat_expiration) and not machine_username:
        raise click.UsageError("--pat-path and --pat-expiration need --machine-username")
    password = admin_password or generated_password()
    spec = NewInstance(
        name=name,
        domains=domains,
        org_name=org_name or name,
        human=HumanAdmin(
            username=admin_username,
            password=password,
            first_name=admin_first_name,
            last_name=admin_last_name,
            email=admin_email,
            password_change_required=password_change_required,
        ),
        machine=MachineAdmin(machine_username, machine_name, pat_path, pat_expiration)
        if machine_username
        else None,
        default_language=language,
    )
    runtime = build_runtime(settings_from(configs))

    async def main() -> CreatedInstance:
        from donjon.core.setup.init import require_initialised

        try:
            await require_initialised(runtime.db)
            return await create_instance(runtime, spec)
        finally:
            await runtime.close()

    try:
        created = run(main)
    except InvalidInstance as exc:
        raise click.BadParameter(exc.problem, param_hint=_option(exc.field)) from None
    except UniqueConstraintError as exc:
        if exc.unique_type == "instance_domain":
            raise DonjonError(
                f"the domain {exc.unique_field} is already served by an instance"
            ) from None
        raise
    click.echo(f"instance {created.instance_id} created: {spec.name.strip()}")
    click.echo(f"  domains:  {', '.join(d.strip().lower() for d in domains)}")
    click.echo(f"  org:      {created.org_id} ({created.org_domain})")
    click.echo(f"  admin:    {admin_username}@{created.org_domain}")
    if not admin_password:
        click.echo(f"  password: {password} (generated; shown this once)")
    if created.pat_file is not None:
        click.echo(f"  API token of {machine_username}: in {created.pat_file}")


@instances.command("list")
@config_option
@fail_cleanly
def instances_list(configs: tuple[str, ...]) -> None:
    """Show each instance: id, name, domains (primary first) and creation time."""
    runtime = build_runtime(settings_from(configs))

    async def main() -> list[dict[str, Any]]:
        d = instance_domains_table
        try:
            async with runtime.db.read() as conn:
                found = await list_instances(conn)
                rows = await conn.execute(
                    select(d.c.instance_id, d.c.domain).order_by(
                        d.c.is_primary.desc(), d.c.created_at, d.c.domain
                    )
                )
                domains: dict[str, list[str]] = {}
                for r in rows:
                    domains.setdefault(r.instance_id, []).append(r.domain)
            return [{**i, "domains": domains.get(str(i["id"]), [])} for i in found]
        finally:
            await runtime.close()

    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "domains", "created")
    for i in run(main):
        table.add_row(
            str(i["id"]),
            str(i["name"]),
            ", ".join(i["domains"]),
            i["created_at"].isoformat(timespec="seconds"),
        )
    Console(width=160).print(table)
