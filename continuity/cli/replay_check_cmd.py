"""``continuity replay check [--json] [--mailbox ADDR]``: can each mailbox be opened on the primary?

Prints one row per mailbox (every enabled provisioned mailbox, or the one named), as
``continuity dns check`` does for DNS; exits 1 when any cannot be opened.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from continuity.cli.context import EXIT_FAILED, CliContext, console, pass_context
from continuity.services.replay_check import MailboxCheck, check_replay
from continuity.store.protocol import Store


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--mailbox", "only", default="", help="Check this mailbox only.")
@pass_context
def check_command(context: CliContext, as_json: bool, only: str) -> None:
    """Verify ahead of an outage that the replay can open each mailbox on the primary; exit 1 when one fails."""
    settings = context.settings()

    async def work(store: Store) -> list[MailboxCheck]:
        if only:
            mailboxes = [only.strip().lower()]
        else:
            mailboxes = sorted(mailbox.address for mailbox in await store.mailboxes.list() if mailbox.enabled)
        return await check_replay(settings, mailboxes)

    checks = context.run(work)
    if as_json:
        click.echo(json.dumps([check.as_json() for check in checks], indent=2))
    else:
        table = Table("Mailbox", "Result", "Step", "Detail")
        for check in checks:
            table.add_row(check.mailbox, "ok" if check.ok else "FAILED", check.step, check.detail)
        console().print(table)
    if not checks or not all(check.ok for check in checks):
        if not checks:
            click.echo("No mailbox to check: provision mailboxes first, or name one with --mailbox.", err=True)
        raise SystemExit(EXIT_FAILED)
