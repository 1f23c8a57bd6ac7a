"""``continuity mailbox add|import|list|disable|enable|passwd``."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from continuity.cli.context import EXIT_FAILED, EXIT_USAGE, CliContext, console, fail, pass_context
from continuity.core.addresses import normalize_address
from continuity.core.mailbox_rows import build_mailbox
from continuity.core.models import Mailbox
from continuity.errors import InvalidInputError, NotFoundError
from continuity.passwords import check_password_policy, hash_password
from continuity.services.provisioning import import_mailboxes
from continuity.store.protocol import Store


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != password:
            fail("the two passwords differ; nothing changed.", EXIT_USAGE)
    else:
        fail("no terminal to ask for a password; use --password-stdin.", EXIT_USAGE)
    try:
        check_password_policy(password)
    except ValueError as exc:
        fail(f"{exc}; nothing changed.", EXIT_USAGE)
    return password


def _address(text: str) -> str:
    try:
        return normalize_address(text)
    except ValueError as exc:
        fail(f"{exc}.", EXIT_USAGE)


@click.group("mailbox")
def mailbox_group() -> None:
    """Manage the pre-provisioned standby mailboxes."""


@mailbox_group.command("add")
@click.argument("address")
@click.option("--name", required=True, help="Display name, e.g. 'Alice Example'.")
@click.option("--alias", "aliases", multiple=True, help="Another address of this mailbox (repeatable).")
@click.option("--alternate-email", default=None, help="Outside address for activation and alerts.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_context
def add_command(
    context: CliContext,
    address: str,
    name: str,
    aliases: tuple[str, ...],
    alternate_email: str | None,
    password_stdin: bool,
) -> None:
    """Create or update a mailbox (idempotent); without a password it awaits activation."""
    settings = context.settings()
    try:
        mailbox = build_mailbox(
            address, name, domains=settings.domains, aliases=aliases, alternate_email=alternate_email
        )
    except ValueError as exc:
        fail(f"{exc}.", EXIT_USAGE)
    if password_stdin:
        mailbox = replace(mailbox, password_hash=hash_password(_read_new_password(True)))

    async def work(store: Store) -> str:
        try:
            outcome = await store.mailboxes.upsert(mailbox, keep_password=True)
        except InvalidInputError as exc:
            fail(f"{exc}; nothing changed.", EXIT_FAILED)
        return outcome.value

    outcome = context.run(work)
    click.echo(f"Mailbox {mailbox.address} {outcome}.")


@mailbox_group.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_context
def import_command(context: CliContext, csv_file: Path) -> None:
    """Upsert mailboxes from a CSV file (columns: address,name,aliases,alternate_email,enabled,password_hash).

    Good rows are kept; bad rows are reported by line number and the command exits 1.
    """
    settings = context.settings()
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        fail(f"cannot read {csv_file}: {exc}.", EXIT_USAGE)
    try:
        report = context.run(lambda store: import_mailboxes(store.mailboxes, text, settings.domains))
    except ValueError as exc:
        fail(f"{csv_file}: {exc}; nothing imported.", EXIT_USAGE)
    for line, error in report.errors:
        click.echo(f"{csv_file}:{line}: {error}", err=True)
    click.echo(report.summary())
    if report.errors:
        sys.exit(EXIT_FAILED)


def _as_json(mailbox: Mailbox) -> dict[str, object]:
    return {
        "address": mailbox.address,
        "name": mailbox.display_name,
        "aliases": list(mailbox.aliases),
        "enabled": mailbox.enabled,
        "alternate_email": mailbox.alternate_email,
        "has_password": mailbox.has_password,
        "created_at": mailbox.created_at,
        "updated_at": mailbox.updated_at,
    }


@mailbox_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
def list_command(context: CliContext, as_json: bool) -> None:
    """List every mailbox."""
    mailboxes = context.run(lambda store: store.mailboxes.list())
    if as_json:
        click.echo(json.dumps([_as_json(mailbox) for mailbox in mailboxes], indent=2))
        return
    table = Table("Address", "Name", "Aliases", "Enabled", "Password", "Alternate")
    for mailbox in mailboxes:
        table.add_row(
            mailbox.address,
            mailbox.display_name,
            ", ".join(mailbox.aliases),
            "yes" if mailbox.enabled else "no",
            "set" if mailbox.has_password else "awaiting activation",
            mailbox.alternate_email or "",
        )
    console().print(table)
    click.echo(f"{len(mailboxes)} mailboxes.")


def _set_enabled(context: CliContext, address: str, enabled: bool) -> None:
    canonical = _address(address)

    async def work(store: Store) -> None:
        try:
            await store.mailboxes.set_enabled(canonical, enabled)
        except NotFoundError:
            fail(f"there is no mailbox {canonical}.", EXIT_FAILED)

    context.run(work)
    click.echo(f"Mailbox {canonical} {'enabled' if enabled else 'disabled'}.")


@mailbox_group.command("disable")
@click.argument("address")
@pass_context
def disable_command(context: CliContext, address: str) -> None:
    """Disable a mailbox: mail to it is refused (550 5.2.1) and it cannot log in."""
    _set_enabled(context, address, False)


@mailbox_group.command("enable")
@click.argument("address")
@pass_context
def enable_command(context: CliContext, address: str) -> None:
    """Enable a disabled mailbox again."""
    _set_enabled(context, address, True)


@mailbox_group.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@pass_context
def passwd_command(context: CliContext, address: str, password_stdin: bool) -> None:
    """Set a mailbox's password (asked twice on a terminal)."""
    canonical = _address(address)
    context.settings()
    password = _read_new_password(password_stdin)

    async def work(store: Store) -> None:
        if await store.mailboxes.get(canonical) is None:
            fail(f"there is no mailbox {canonical}.", EXIT_FAILED)
        password_hash = await asyncio.to_thread(hash_password, password)
        await store.mailboxes.set_password_hash(canonical, password_hash)

    context.run(work)
    click.echo(f"Password of {canonical} changed.")
