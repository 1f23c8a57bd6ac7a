"""``continuity directory sync|status``: synchronise the standby mailboxes with AD or Entra ID."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.cli.context import EXIT_FAILED, EXIT_USAGE, CliContext, console, fail, pass_context
from continuity.directory.core.links import SyncRun
from continuity.directory.service import SyncReport
from continuity.directory.wiring import build_notifier, build_source, build_sync
from continuity.errors import ConfigError
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


@click.group("directory")
def directory_group() -> None:
    """Synchronise the standby mailboxes with Active Directory or Entra ID ([directory])."""


def _print_report(report: SyncReport) -> None:
    table = Table("Change", "Mailbox", "Detail")
    for change in report.changes:
        table.add_row(change.kind.value, change.address, change.detail)
    if report.changes:
        console().print(table)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for error in report.errors:
        click.echo(f"failed: {error}", err=True)
    click.echo(report.summary() + ".")


@directory_group.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--allow-removals", is_flag=True, help="Apply a run that disables more mailboxes than max_removals.")
@pass_context
def sync_command(context: CliContext, dry_run: bool, as_json: bool, allow_removals: bool) -> None:
    """Read the directory and create, update or disable mailboxes (never delete them).

    Exits 1 when the removal guard refused the run or some changes failed.
    """
    settings = context.settings()
    try:
        build_source(settings)  # a source of none is a usage error before the store opens
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def work(store: Store) -> SyncReport:
        notifier = build_notifier(settings)
        report = await build_sync(settings, store, notifier).run(dry_run=dry_run, allow_removals=allow_removals)
        await notifier.drain()
        return report

    report = context.run(work)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report)
    if report.outcome in ("refused", "partial"):
        sys.exit(EXIT_FAILED)


def _run_json(run: SyncRun) -> dict[str, object]:
    return {
        "at": _iso(run.at),
        "source": run.source,
        "mode": run.mode,
        "outcome": run.outcome,
        "summary": run.summary,
        "counts": run.counts,
    }


@directory_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def status_command(context: CliContext, as_json: bool) -> None:
    """The source, the last runs, the synchronised mailboxes and the failover groups."""
    settings = context.settings()

    async def work(store: Store) -> tuple[list[SyncRun], int, int, dict[str, list[str]]]:
        links = await store.directory_sync.links()
        mailboxes = {mailbox.address: mailbox for mailbox in await store.mailboxes.list()}
        enabled = sum(1 for link in links.values() if (box := mailboxes.get(link.address)) is not None and box.enabled)
        return await store.directory_sync.runs(10), len(links), enabled, await store.directory_sync.groups()

    runs, linked, enabled, groups = context.run(work)
    status = {
        "source": settings.directory.source.value,
        "interval": settings.directory.interval,
        "linked_mailboxes": linked,
        "enabled_mailboxes": enabled,
        "groups": groups,
        "runs": [_run_json(run) for run in runs],
    }
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"Source: {status['source']}, every {settings.directory.interval:.0f}s inside serve.")
    click.echo(f"Mailboxes from the directory: {linked} ({enabled} enabled).")
    for name, members in groups.items():
        click.echo(f"Group {name}: {', '.join(members)}")
    if not runs:
        click.echo("No sync has run yet.")
    for run in runs:
        click.echo(f"{_iso(run.at)}  {run.outcome:8}  {run.summary}")
    if runs and runs[0].outcome in ("refused", "failed"):
        sys.exit(EXIT_FAILED)
