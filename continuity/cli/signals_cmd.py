"""``continuity signals list|status|clear|held|release|delete``: compromise signals and held outbound mail.

Works beside a running server (it reads a mailbox's state for every message it relays,
so a clear takes effect with the next one) and without one. Clears, releases and deletes
are written to the audit log.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.cli.context import CliContext, console, pass_context
from continuity.core.signals import MailboxState, StoredSignal
from continuity.services import signal_admin
from continuity.store.protocol import Store
from continuity.store.signals_protocol import HeldOutbound


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _signal_json(stored: StoredSignal) -> dict[str, object]:
    signal = stored.signal
    return {
        "id": stored.id,
        "at": _iso(signal.at),
        "kind": signal.kind.value,
        "mailbox": signal.mailbox or signal_admin.PRIMARY,
        "severity": signal.severity.value,
        "summary": signal.summary,
        "evidence": list(signal.evidence),
        "source": signal.source,
        "queue_id": signal.queue_id,
        "responses": [response.value for response in stored.responses],
        "cleared_at": _iso(stored.cleared_at) if stored.cleared_at is not None else None,
    }


@click.group("signals")
def signals_group() -> None:
    """Compromise signals: list them, see contained mailboxes, clear a mailbox, review held outbound mail."""


@signals_group.command("list")
@click.option("--mailbox", default=None, help="Only this mailbox (or 'primary').")
@click.option("--open", "open_only", is_flag=True, help="Only signals not yet cleared.")
@click.option("--limit", default=100, show_default=True, help="Most signals to list, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
def list_command(context: CliContext, mailbox: str | None, open_only: bool, limit: int, as_json: bool) -> None:
    """List signals with their evidence and the responses taken."""

    async def work(store: Store) -> list[StoredSignal]:
        key = await signal_admin.resolve(store, mailbox) if mailbox else None
        return await store.signals.list(limit, key, open_only=open_only)

    rows = context.run(work)
    if as_json:
        click.echo(json.dumps([_signal_json(row) for row in rows], indent=2, ensure_ascii=False))
        return
    table = Table("Id", "When", "Mailbox", "Kind", "Severity", "Summary", "Evidence", "Responses", "Cleared")
    for row in rows:
        signal = row.signal
        table.add_row(
            str(row.id),
            _iso(signal.at),
            signal.mailbox or signal_admin.PRIMARY,
            signal.kind.value,
            signal.severity.value,
            signal.summary,
            "\n".join(signal.evidence),
            ", ".join(response.value for response in row.responses) or "-",
            _iso(row.cleared_at) if row.cleared_at is not None else "-",
        )
    console().print(table)
    click.echo(f"{len(rows)} signals.")


@signals_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def status_command(context: CliContext, as_json: bool) -> None:
    """Mailboxes that are flagged or contained (and those cleared before)."""

    async def work(store: Store) -> list[MailboxState]:
        return await store.signals.states()

    states = context.run(work)
    if as_json:
        data = [
            {
                "mailbox": state.mailbox or signal_admin.PRIMARY,
                "status": state.status.value,
                "since": _iso(state.since),
                "reason": state.reason,
                "cleared_at": _iso(state.cleared_at) if state.cleared_at else None,
                "cleared_by": state.cleared_by,
            }
            for state in states
        ]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table("Mailbox", "Status", "Since", "Why", "Last cleared")
    for state in states:
        cleared = f"{_iso(state.cleared_at)} by {state.cleared_by}" if state.cleared_at else "-"
        table.add_row(
            state.mailbox or signal_admin.PRIMARY, state.status.value, _iso(state.since), state.reason, cleared
        )
    console().print(table)
    contained = sum(1 for state in states if state.contained)
    click.echo(f"{contained} contained mailbox(es).")


@signals_group.command("clear")
@click.argument("address")
@click.option("--reason", required=True, help="What was checked and cleaned (written to the audit log).")
@click.option("--actor", default=None, help="Who clears it (default: cli:<user>).")
@pass_context
def clear_command(context: CliContext, address: str, reason: str, actor: str | None) -> None:
    """Set a mailbox (or 'primary') back to normal: its open signals are cleared and its mail is relayed again."""
    before, cleared = context.run(lambda store: signal_admin.clear(store, address, actor or _default_actor(), reason))
    who = before.mailbox or signal_admin.PRIMARY
    click.echo(f"Cleared {who} (was {before.status.value}); {cleared} open signal(s) cleared.")
    click.echo("Mail held while it was contained stays held: review it with 'continuity signals held'.")


def _held_json(item: HeldOutbound) -> dict[str, object]:
    return {
        "id": item.entry.queue_id,
        "mailbox": item.mailbox,
        "received_at": _iso(item.entry.received_at),
        "sender": item.entry.sender,
        "recipients": list(item.entry.recipients),
        "subject": item.entry.subject,
        "size": item.entry.size,
        "reason": item.reason,
    }


@signals_group.command("held")
@click.option("--mailbox", default=None, help="Only mail of this mailbox.")
@click.option("--limit", default=100, show_default=True, help="Most messages to list, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
def held_command(context: CliContext, mailbox: str | None, limit: int, as_json: bool) -> None:
    """List outbound mail held for review (contained mailboxes, malicious mail)."""

    async def work(store: Store) -> list[HeldOutbound]:
        key = await signal_admin.resolve(store, mailbox) if mailbox else None
        return await store.feeds.held(limit, 0, key)

    rows = context.run(work)
    if as_json:
        click.echo(json.dumps([_held_json(row) for row in rows], indent=2, ensure_ascii=False))
        return
    table = Table("Id", "Received", "Mailbox", "Recipients", "Subject", "Why")
    for row in rows:
        recipients = ", ".join(row.entry.recipients[:3]) + (" ..." if len(row.entry.recipients) > 3 else "")
        table.add_row(
            row.entry.queue_id, _iso(row.entry.received_at), row.mailbox, recipients, row.entry.subject[:60], row.reason
        )
    console().print(table)
    click.echo(f"{len(rows)} held messages. Look at one with 'continuity queue show ID' (--raw for its bytes).")


@signals_group.command("release")
@click.argument("queue_id")
@click.option("--reason", required=True, help="Why it may go (written to the audit log).")
@click.option("--actor", default=None, help="Who releases it (default: cli:<user>).")
@pass_context
def release_command(context: CliContext, queue_id: str, reason: str, actor: str | None) -> None:
    """Relay held outbound mail after all (audited)."""
    entry = context.run(lambda store: signal_admin.release(store, queue_id, actor or _default_actor(), reason))
    click.echo(f"Released {entry.queue_id} to {', '.join(entry.recipients)}.")


@signals_group.command("delete")
@click.argument("queue_id")
@click.option("--reason", required=True, help="Why it is deleted (written to the audit log).")
@click.option("--actor", default=None, help="Who deletes it (default: cli:<user>).")
@pass_context
def delete_command(context: CliContext, queue_id: str, reason: str, actor: str | None) -> None:
    """Delete held outbound mail for good (audited)."""
    entry = context.run(lambda store: signal_admin.delete(store, queue_id, actor or _default_actor(), reason))
    click.echo(f"Deleted {entry.queue_id}.")
