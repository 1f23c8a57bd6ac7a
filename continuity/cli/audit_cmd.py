"""``continuity audit list|verify``: read and check the hash-chained audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.cli.context import EXIT_FAILED, CliContext, console, fail, pass_context
from continuity.core.audit import AuditEntry


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _as_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": _iso(entry.at),
        "actor": entry.record.actor,
        "action": entry.record.action,
        "reason": entry.record.reason,
        "details": entry.details,
        "hash": entry.hash,
    }


@click.group("audit")
def audit_group() -> None:
    """Read and verify the audit log (who did what, when, why, with what evidence)."""


@audit_group.command("list")
@click.option("--limit", default=50, show_default=True, help="Newest entries to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
def list_command(context: CliContext, limit: int, as_json: bool) -> None:
    """Show the newest audit entries, oldest first."""
    entries = context.run(lambda store: store.audit.list(limit))
    if as_json:
        click.echo(json.dumps([_as_json(entry) for entry in entries], indent=2, ensure_ascii=False))
        return
    table = Table("Seq", "When", "Actor", "Action", "Reason")
    for entry in entries:
        table.add_row(str(entry.seq), _iso(entry.at), entry.record.actor, entry.record.action, entry.record.reason)
    console().print(table)


@audit_group.command("verify")
@pass_context
def verify_command(context: CliContext) -> None:
    """Recompute the hash chain; exit 1 naming the first entry that was altered or removed."""
    verdict = context.run(lambda store: store.audit.verify())
    if not verdict.ok:
        fail(f"the audit log was tampered with at entry {verdict.first_bad_seq}: {verdict.problem}.", EXIT_FAILED)
    click.echo(f"Audit log intact: {verdict.entries} entries, hash chain and head verified.")
