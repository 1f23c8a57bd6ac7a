"""``continuity queue list|show``: what the appliance holds and where it stands."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import click
from rich.table import Table

from continuity.cli.context import EXIT_FAILED, CliContext, console, fail, pass_context
from continuity.core.models import QueueEntry
from continuity.core.queue_ids import is_queue_id
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _as_json(entry: QueueEntry) -> dict[str, object]:
    return {
        "id": entry.queue_id,
        "message_id": entry.message_id,
        "sender": entry.sender,
        "recipients": list(entry.recipients),
        "size": entry.size,
        "state": entry.state.value,
        "received_at": _iso(entry.received_at),
        "subject": entry.subject,
        "sha256": entry.sha256,
        "client_address": entry.client_address,
        "client_helo": entry.client_helo,
    }


@click.group("queue")
def queue_group() -> None:
    """Inspect queued messages."""


_PAGE = 1000  # messages read and printed at a time


async def _pages(store: Store, limit: int) -> AsyncIterator[list[QueueEntry]]:
    """The newest limit messages (0: all), a page at a time."""
    before: tuple[float, str] | None = None
    left = limit or None
    while left is None or left > 0:
        page = await store.messages.page(before, min(_PAGE, left) if left is not None else _PAGE)
        if not page:
            return
        yield page
        before = (page[-1].received_at, page[-1].queue_id)
        if left is not None:
            left -= len(page)


def _table(entries: list[QueueEntry]) -> Table:
    table = Table("Id", "Received", "Sender", "Recipients", "Size", "State", "Message-ID")
    for entry in entries:
        table.add_row(
            entry.queue_id,
            _iso(entry.received_at),
            entry.sender or "<>",
            ", ".join(entry.recipients),
            str(entry.size),
            entry.state.value,
            entry.message_id,
        )
    return table


@queue_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option(
    "--limit", default=1000, show_default=True, type=click.IntRange(min=0), help="Most messages to list (0: all)."
)
@pass_context
def list_command(context: CliContext, as_json: bool, limit: int) -> None:
    """List queued messages, newest first.

    The messages are read and printed a page at a time, so listing millions of them
    takes memory for one page, not for the queue.
    """

    async def work(store: Store) -> int:
        count = 0
        if as_json:
            click.echo("[", nl=False)
        async for page in _pages(store, limit):
            if as_json:
                text = ",\n".join(json.dumps(_as_json(entry), ensure_ascii=False) for entry in page)
                click.echo(("\n" if count == 0 else ",\n") + text, nl=False)
            else:
                console().print(_table(page))
            count += len(page)
        if as_json:
            click.echo("\n]")
        return count

    count = context.run(work)
    if not as_json:
        click.echo(f"{count} messages.")


@queue_group.command("show")
@click.argument("queue_id")
@click.option("--raw", is_flag=True, help="Print the message as stored, with the Received header added on receipt.")
@pass_context
def show_command(context: CliContext, queue_id: str, raw: bool) -> None:
    """Show one queued message's envelope and state, or its raw bytes with --raw."""
    wanted = queue_id.strip().upper()
    if not is_queue_id(wanted):
        fail(f"'{queue_id}' is not a queue id (16 characters, as shown by 'continuity queue list').", EXIT_FAILED)

    async def work(store: Store) -> tuple[QueueEntry, bytes | None]:
        entry = await store.messages.get(wanted)
        if entry is None:
            fail(f"there is no queued message {wanted}.", EXIT_FAILED)
        if not raw:
            return entry, None
        trace = await store.messages.trace_header(wanted) or b""
        return entry, trace + await store.blobs.read(entry.sha256)

    entry, content = context.run(work)
    if content is not None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    for key, value in _as_json(entry).items():
        shown = ", ".join(str(item) for item in value) if isinstance(value, list) else value
        click.echo(f"{key + ':':16} {shown}")
