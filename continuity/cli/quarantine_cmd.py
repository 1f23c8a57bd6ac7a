"""``continuity quarantine list|show|release|delete``: review held messages (releases and deletes are audited)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.cli.context import CliContext, console, pass_context
from continuity.core.filter_records import StoredVerdict
from continuity.core.models import QueueEntry
from continuity.services import quarantine
from continuity.services.content_reader import LocalContentReader
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _verdict_json(verdict: StoredVerdict | None) -> dict[str, object] | None:
    if verdict is None:
        return None
    return {
        "verdict": verdict.verdict.value,
        "score": verdict.score,
        "reasons": list(verdict.reasons),
        "fired": list(verdict.fired),
        "findings": [
            {"code": f.code, "score": f.score, "message": f.message, "evidence": list(f.evidence)}
            for f in verdict.findings
        ],
    }


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.group("quarantine")
def quarantine_group() -> None:
    """Review quarantined (held) messages: list, preview safely, release or delete."""


@quarantine_group.command("list")
@click.option("--limit", default=100, show_default=True, help="Most messages to list, newest first.")
@click.option("--mailbox", default=None, help="Only messages for this mailbox.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
def list_command(context: CliContext, limit: int, mailbox: str | None, as_json: bool) -> None:
    """List held messages with the reason they are held."""

    async def work(store: Store) -> list[tuple[QueueEntry, StoredVerdict | None]]:
        entries = await store.quarantine.list(limit=limit, mailbox=mailbox)
        return [(entry, await store.verdicts.get(entry.queue_id)) for entry in entries]

    rows = context.run(work)
    if as_json:
        data = [
            {
                "id": entry.queue_id,
                "received_at": _iso(entry.received_at),
                "sender": entry.sender,
                "recipients": list(entry.recipients),
                "subject": entry.subject,
                "size": entry.size,
                "verdict": _verdict_json(verdict),
            }
            for entry, verdict in rows
        ]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table("Id", "Received", "Sender", "Recipients", "Subject", "Score", "Codes", "Why")
    for entry, verdict in rows:
        codes = ", ".join(dict.fromkeys(f.code for f in verdict.findings)) if verdict else ""
        table.add_row(
            entry.queue_id,
            _iso(entry.received_at),
            entry.sender or "<>",
            ", ".join(entry.recipients),
            entry.subject[:60],
            f"{verdict.score:g}" if verdict else "-",
            codes or "-",
            "; ".join(verdict.reasons) if verdict else "-",
        )
    console().print(table)
    click.echo(f"{len(rows)} held messages.")


@quarantine_group.command("show")
@click.argument("queue_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def show_command(context: CliContext, queue_id: str, as_json: bool) -> None:
    """Preview a held message safely: headers, findings, plain text, link domains, attachments (never opened)."""
    shown = context.run(lambda store: quarantine.preview(store, queue_id, LocalContentReader(store.blobs)))
    attachments = [
        {"filename": a.filename, "declared_type": a.declared_type, "detected_type": a.detected_type, "size": a.size}
        for a in shown.attachments
    ]
    if as_json:
        data = {
            "id": shown.entry.queue_id,
            "from": shown.from_,
            "to": shown.to,
            "reply_to": shown.reply_to,
            "date": shown.date,
            "subject": shown.subject,
            "envelope_sender": shown.entry.sender,
            "client_address": shown.entry.client_address,
            "verdict": _verdict_json(shown.verdict),
            "link_domains": list(shown.link_domains),
            "attachments": attachments,
            "text": shown.text,
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for label, value in (
        ("Id", shown.entry.queue_id),
        ("Received", f"{_iso(shown.entry.received_at)} from [{shown.entry.client_address}]"),
        ("Envelope", f"<{shown.entry.sender}> -> {', '.join(shown.entry.recipients)}"),
        ("From", shown.from_),
        ("To", shown.to),
        ("Reply-To", shown.reply_to or "-"),
        ("Date", shown.date),
        ("Subject", shown.subject),
    ):
        click.echo(f"{label + ':':10} {value}")
    verdict = shown.verdict
    if verdict is not None:
        click.echo(f"\nVerdict: {verdict.verdict.value} (score {verdict.score:g}): {'; '.join(verdict.reasons)}")
        for finding in verdict.findings:
            evidence = f" [{'; '.join(finding.evidence)}]" if finding.evidence else ""
            click.echo(f"  {finding.code} ({finding.score:g}): {finding.message}{evidence}")
    click.echo(f"\nLink domains: {', '.join(shown.link_domains) or '-'}")
    click.echo("Attachments:" + ("" if attachments else " -"))
    for item in shown.attachments:
        click.echo(
            f"  {item.filename or '(unnamed)'}  {item.declared_type}, detected {item.detected_type}, {item.size} bytes"
        )
    click.echo("\n--- text (plain, not rendered) ---")
    click.echo(shown.text)


@quarantine_group.command("release")
@click.argument("queue_id")
@click.option("--reason", required=True, help="Why it is released (written to the audit log).")
@click.option("--actor", default=None, help="Who releases it (default: cli:<user>).")
@pass_context
def release_command(context: CliContext, queue_id: str, reason: str, actor: str | None) -> None:
    """Release a held message into its recipients' Inboxes (audited)."""
    entry = context.run(lambda store: quarantine.release(store, queue_id, actor or _default_actor(), reason))
    click.echo(f"Released {entry.queue_id} to {', '.join(entry.recipients)}.")


@quarantine_group.command("delete")
@click.argument("queue_id")
@click.option("--reason", required=True, help="Why it is deleted (written to the audit log).")
@click.option("--actor", default=None, help="Who deletes it (default: cli:<user>).")
@pass_context
def delete_command(context: CliContext, queue_id: str, reason: str, actor: str | None) -> None:
    """Delete a held message for good (audited)."""
    entry = context.run(lambda store: quarantine.delete(store, queue_id, actor or _default_actor(), reason))
    click.echo(f"Deleted {entry.queue_id}.")
