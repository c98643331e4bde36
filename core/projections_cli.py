"""`donjon projections list | failures [NAME] | rebuild NAME... | rebuild --all`.

Operators see each projection (read model): its kind, version, status,
position and lag; the events that failed in one (retrying or parked); and
rebuild projections from the event store, with a progress bar, resumable
(`--restart` starts over).
"""

from __future__ import annotations

from typing import Any

import click

from donjon.core.cli import config_option, fail_cleanly, run, settings_from
from donjon.core.runtime import build_runtime


@click.group()
def projections() -> None:
    """Inspect and rebuild projections (read models)."""


@projections.command("list")
@config_option
@fail_cleanly
def projections_list(configs: tuple[str, ...]) -> None:
    """Show each projection: kind, version, status, position and lag."""
    from donjon.core.projections.status import projection_status

    runtime = build_runtime(settings_from(configs))

    async def main() -> list[dict[str, Any]]:
        try:
            return await projection_status(runtime)
        finally:
            await runtime.close()

    rows = run(main)
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "version", "status", "position", "lag", "parked")
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            str(r["version"]),
            r["status"],
            str(r["position"]),
            str(r["lag"]),
            str(r["parked"]),
        )
    Console().print(table)


@projections.command("failures")
@click.argument("name", required=False)
@config_option
@fail_cleanly
def projections_failures(name: str | None, configs: tuple[str, ...]) -> None:
    """Show events that failed in a projection: retried ones and parked ones."""
    from donjon.core.projections.state import list_failures

    runtime = build_runtime(settings_from(configs))
    if name is not None and name not in {p.name for p in runtime.projections}:
        raise click.UsageError(f"unknown projection {name!r}")

    async def main() -> list[dict[str, Any]]:
        try:
            async with runtime.db.read() as conn:
                return await list_failures(conn, name)
        finally:
            await runtime.close()

    rows = run(main)
    if not rows:
        click.echo("no failed events")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "projection", "position", "event type", "failures", "state", "last failed", "error"
    )
    for r in rows:
        table.add_row(
            r["projection"],
            str(r["position"]),
            r["event_type"],
            str(r["failure_count"]),
            "parked" if r["parked"] else "retrying",
            r["last_failed"].isoformat(timespec="seconds"),
            r["error"],
        )
    Console(width=160).print(table)


@projections.command("rebuild")
@click.argument("names", nargs=-1)
@click.option("--all", "rebuild_all", is_flag=True, help="Rebuild every projection.")
@click.option(
    "--restart", is_flag=True, help="Start over instead of resuming an interrupted rebuild."
)
@config_option
@fail_cleanly
def projections_rebuild(
    names: tuple[str, ...], rebuild_all: bool, restart: bool, configs: tuple[str, ...]
) -> None:
    """Rebuild projections from the event store, with a progress bar; resumable."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from donjon.core.projections.rebuild import rebuild

    runtime = build_runtime(settings_from(configs))
    if rebuild_all == bool(names):
        raise click.UsageError("name the projections to rebuild, or pass --all")
    known = {p.name: p for p in runtime.projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(
            f"unknown projection {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    chosen = list(known.values()) if rebuild_all else [known[n] for n in names]

    async def main() -> None:
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            ) as bar:
                for projection in chosen:
                    task = bar.add_task(projection.name, total=None)

                    def report(done: int, total: int, task: Any = task) -> None:
                        bar.update(task, completed=done, total=total)

                    result = await rebuild(
                        runtime.db,
                        runtime.store,
                        projection,
                        bulk_limit=runtime.settings.Projections.rebuild_bulk_limit(projection.name),
                        restart=restart,
                        progress=report,
                    )
                    bar.console.print(f"{projection.name}: {result.events} events replayed")
        finally:
            await runtime.close()

    run(main)
