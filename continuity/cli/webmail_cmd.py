"""``continuity webmail sign-out|reset-totp|activation-link``: an operator's levers on webmail accounts.

These work beside a running server (the store is shared) and every change is written to
the audit log: ending the sessions of an account being cleaned up, removing a lost second
factor, handing a user an activation link by phone when mail to their alternate address
cannot get through.
"""

from __future__ import annotations

import getpass
import secrets

import click

from continuity.cli.context import EXIT_USAGE, CliContext, fail, pass_context
from continuity.core.addresses import normalize_address
from continuity.core.audit import AuditRecord
from continuity.errors import NotFoundError
from continuity.store.protocol import Store


def _address(text: str) -> str:
    try:
        return normalize_address(text)
    except ValueError as exc:
        fail(f"{exc}.", EXIT_USAGE)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _existing(store: Store, address: str) -> None:
    if await store.mailboxes.get(address) is None:
        raise NotFoundError(f"there is no mailbox {address}")


@click.group("webmail")
def webmail_group() -> None:
    """Webmail accounts: end sessions, reset the second factor, issue activation links."""


@webmail_group.command("sign-out")
@click.argument("address")
@click.option("--reason", required=True, help="Why, for the audit log (e.g. 'account compromised').")
@pass_context
def sign_out_command(context: CliContext, address: str, reason: str) -> None:
    """End every webmail session of a mailbox at once."""
    mailbox = _address(address)

    async def work(store: Store) -> int:
        await _existing(store, mailbox)
        ended = await store.webmail_auth.delete_sessions_of(mailbox)
        await store.audit.append(
            AuditRecord.of(_operator(), "webmail.sign_out", reason, {"mailbox": mailbox, "sessions": ended})
        )
        return ended

    ended = context.run(work)
    click.echo(f"ended {ended} webmail session{'s' if ended != 1 else ''} of {mailbox}")


@webmail_group.command("reset-totp")
@click.argument("address")
@click.option("--reason", required=True, help="Why, for the audit log (e.g. 'phone lost, identity checked by call').")
@pass_context
def reset_totp_command(context: CliContext, address: str, reason: str) -> None:
    """Remove a mailbox's second factor (the user can enrol again after signing in)."""
    mailbox = _address(address)

    async def work(store: Store) -> bool:
        await _existing(store, mailbox)
        # Deleting without reading first also works when the secret no longer decrypts (lost key file).
        had = await store.webmail_auth.disable_totp(mailbox)
        await store.audit.append(AuditRecord.of(_operator(), "webmail.totp_reset", reason, {"mailbox": mailbox}))
        return had

    had = context.run(work)
    click.echo(f"two-step sign-in of {mailbox} {'removed' if had else 'was not set up; nothing to remove'}")


@webmail_group.command("activation-link")
@click.argument("address")
@click.option("--reason", required=True, help="Why, for the audit log (e.g. 'alternate address unreachable').")
@pass_context
def activation_link_command(context: CliContext, address: str, reason: str) -> None:
    """Print a one-time activation link for a mailbox without a password (hand it over yourself)."""
    settings = context.settings()
    if not settings.webmail.public_url:
        fail("set webmail.public_url first: activation links point there.", EXIT_USAGE)
    mailbox = _address(address)

    async def work(store: Store) -> str:
        found = await store.mailboxes.get(mailbox)
        if found is None:
            raise NotFoundError(f"there is no mailbox {mailbox}")
        if found.has_password:
            fail(f"{mailbox} already has a password; activation links are for first sign-in only.")
        token = secrets.token_urlsafe(32)  # as the webmail's own links (webmail.security.sessions)
        await store.webmail_auth.create_activation(token, mailbox, settings.webmail.activation_hours * 3600.0)
        await store.audit.append(AuditRecord.of(_operator(), "webmail.activation_link", reason, {"mailbox": mailbox}))
        return f"{settings.webmail.public_url}/activate/{token}"

    click.echo(context.run(work))
