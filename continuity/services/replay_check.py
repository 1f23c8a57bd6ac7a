"""``continuity replay check``: can the replay open each mailbox on the primary, ahead of an outage?

For each provisioned mailbox (or one): connect to the primary's IMAP over TLS, log in as
[replay] auth says (continuity.adapters.imap_auth), SELECT the Inbox and the Sent folder
([replay.folders]). Each mailbox gets one result naming the step that failed: ``connect``
(refused, unreachable, a TLS problem such as an untrusted certificate), ``token`` (Entra's
token endpoint refused the app, with its AADSTS code), ``login`` (the primary refused the
login: wrong password, no right on the mailbox, a mailbox the primary does not know) or
``folder`` (the Inbox or the Sent folder is missing). Nothing on the primary is changed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import aioimaplib

from continuity.adapters.imap_append import ImapTarget
from continuity.adapters.imap_auth import LoginRefusedError
from continuity.config.settings import Settings
from continuity.core.imap_syntax import ImapSyntaxError, mailbox_argument
from continuity.errors import PrimaryAuthError, PrimaryReplyError
from continuity.services.replayer import imap_target


@dataclass(frozen=True, slots=True)
class MailboxCheck:
    """Whether the replay can open one mailbox; step names what failed (or "ready")."""

    mailbox: str
    ok: bool
    step: str
    detail: str

    def as_json(self) -> dict[str, object]:
        """The check as a JSON object."""
        return asdict(self)


def _text(lines: list[bytes | bytearray | str]) -> str:
    parts = [line.decode(errors="replace") if isinstance(line, bytes | bytearray) else line for line in lines]
    return " ".join(part for part in parts if part).strip()


def _connect_problem(exc: BaseException, target: ImapTarget) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS problem with {target.server}: the certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS problem with {target.server}: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"{target.server} did not answer within {target.timeout:g} s"
    return f"cannot reach {target.server}: {type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def check_mailbox(target: ImapTarget, mailbox: str, folders: Iterable[str]) -> MailboxCheck:
    """Open mailbox on the primary and select folders; never raises for what the primary answers."""
    client, guard = target.new_client()
    step = "connect"
    try:
        await target.greeting(client, guard)
        step = "login"
        await target.log_in(client, guard, mailbox)
        step = "folder"
        for folder in folders:
            reply = await guard.run("SELECT", client.select(mailbox_argument(folder)), target.timeout)
            if reply.result != "OK":
                return MailboxCheck(mailbox, False, step, f"folder '{folder}' missing: {_text(reply.lines)}")
            client.protocol.state = aioimaplib.AUTH  # the next SELECT is valid in aioimaplib's eyes
        await guard.run("LOGOUT", client.logout(), target.timeout)
    except PrimaryAuthError as exc:
        kind = "token endpoint error" if exc.bound == "token endpoint" else "authentication refused"
        return MailboxCheck(mailbox, False, "token" if exc.bound == "token endpoint" else "login", f"{kind}: {exc}")
    except LoginRefusedError as exc:
        return MailboxCheck(mailbox, False, step, f"authentication refused: {exc.detail}")
    except (ImapSyntaxError, PrimaryReplyError) as exc:
        return MailboxCheck(mailbox, False, step, str(exc))
    except (TimeoutError, OSError, aioimaplib.AioImapException, ValueError, IndexError) as exc:
        detail = _connect_problem(exc, target) if step == "connect" else f"{type(exc).__name__}: {exc}"
        return MailboxCheck(mailbox, False, step, detail)
    finally:
        if client.protocol is not None and client.protocol.transport is not None:
            client.protocol.transport.close()
    return MailboxCheck(mailbox, True, "ready", f"logged in ({target.login.mode.value}), selected {', '.join(folders)}")


async def check_replay(settings: Settings, mailboxes: list[str]) -> list[MailboxCheck]:
    """Check every mailbox, a few at a time ([replay] concurrency); one result per mailbox, in order."""
    target = imap_target(settings)
    if target is None:
        detail = "set [primary] host and the [replay] login (master_user and master_password, or [replay.entra])"
        return [MailboxCheck(mailbox, False, "settings", detail) for mailbox in mailboxes] or [
            MailboxCheck("-", False, "settings", detail)
        ]
    folders = (settings.replay.folders.inbox, settings.replay.folders.sent)
    slots = asyncio.Semaphore(settings.replay.concurrency)

    async def one(mailbox: str) -> MailboxCheck:
        async with slots:
            return await check_mailbox(target, mailbox, folders)

    return list(await asyncio.gather(*(one(mailbox) for mailbox in mailboxes)))
