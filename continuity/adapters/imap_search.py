"""Finding a message by Message-ID in a mailbox on the primary, over IMAP (aioimaplib).

Logs in to the user's mailbox as [replay] auth says (continuity.adapters.imap_auth: the
master user, SASL PLAIN with an authzid, or an Entra app's token), opens folders and
searches the Message-ID header; it never changes a message. Used by the compromise checks: is a
relayed message in the sender's Sent Items, is an inbound message still in the Inbox.

aioimaplib sends its arguments as given, so every name and value is quoted here (and
refused when it has characters that cannot be quoted safely). Every reply passes
continuity.adapters.imap_guard (bounded lines, literals and line counts, a deadline per command).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioimaplib

from continuity.adapters.imap_auth import ImapLogin, LoginRefusedError, log_in
from continuity.adapters.imap_guard import ReplyLimits, guard_client
from continuity.core.imap_syntax import ImapSyntaxError
from continuity.errors import PrimaryAuthError, PrimaryReplyError

_LIST_LINE = re.compile(r'^\((?P<flags>[^)]*)\) (?P<delimiter>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')
_SKIP_FLAGS = frozenset({"\\noselect", "\\nonexistent"})


class ImapCheckError(Exception):
    """The primary's IMAP could not answer the question (login refused, connection, protocol)."""


@dataclass(frozen=True, slots=True)
class ImapAccess:
    """Where the primary's IMAP is and how to open any mailbox on it."""

    host: str
    port: int
    login: ImapLogin
    tls: ssl.SSLContext
    timeout: float
    limits: ReplyLimits = field(default_factory=ReplyLimits)


def quote(value: str) -> str:
    """An IMAP quoted string; ValueError for characters a quoted string cannot carry."""
    if any(char in value for char in "\r\n\0") or not value.isascii():
        raise ValueError(f"cannot be sent in an IMAP command: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(line: bytes | bytearray | str) -> str:
    return line.decode("utf-8", "replace") if isinstance(line, bytes | bytearray) else line


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def parse_list(lines: Sequence[bytes | bytearray | str]) -> list[str]:
    """Selectable folder names from a LIST response (as the server spells them)."""
    names: list[str] = []
    for raw in lines:
        match = _LIST_LINE.match(_text(raw).strip())
        if match is None:
            continue
        flags = {flag.lower() for flag in match.group("flags").split()}
        if flags & _SKIP_FLAGS:
            continue
        names.append(_unquote(match.group("name").strip()))
    return names


class _Session:
    """One logged-in IMAP connection."""

    def __init__(self, access: ImapAccess) -> None:
        self._access = access
        self._client = aioimaplib.IMAP4_SSL(
            host=access.host, port=access.port, timeout=access.timeout, ssl_context=access.tls
        )
        self._guard = guard_client(self._client, f"{access.host}:{access.port}", access.limits)

    async def _run(self, command: str, work: Awaitable[Any]) -> Any:
        return await self._guard.run(command, work, self._access.timeout)

    async def open(self, mailbox: str) -> None:
        access = self._access
        await self._run("greeting", self._client.wait_hello_from_server())
        try:
            await log_in(
                self._client,
                self._guard,
                access.login,
                mailbox,
                server=f"{access.host}:{access.port}",
                host=access.host,
                port=access.port,
                deadline=access.timeout,
            )
        except (LoginRefusedError, PrimaryAuthError) as exc:
            raise ImapCheckError(f"the primary refused the login to {mailbox}: {exc}") from None
        except ImapSyntaxError as exc:
            raise ImapCheckError(f"cannot log in to {mailbox}: {exc}") from None

    async def folders(self) -> list[str]:
        response = await self._run("LIST", self._client.list('""', '"*"'))
        if response.result != "OK":
            raise ImapCheckError("LIST failed")
        return parse_list(response.lines)

    async def contains(self, folder: str, message_id: str) -> bool | None:
        """True/False, or None when the folder cannot be opened."""
        # SELECT, not EXAMINE: aioimaplib allows SEARCH only in its SELECTED state, which EXAMINE
        # does not set; nothing here stores flags, so the folder is not changed either way.
        opened = await self._run("SELECT", self._client.select(quote(folder)))
        if opened.result != "OK":
            return None
        found = await self._run("SEARCH", self._client.search("HEADER", "Message-ID", quote(message_id), charset=None))
        if found.result != "OK":
            raise ImapCheckError(f"SEARCH in {folder} failed: {_text(found.lines[-1]) if found.lines else ''}")
        numbers = [word for line in found.lines[:-1] for word in _text(line).split() if word.isdigit()]
        return bool(numbers)

    async def close(self) -> None:
        try:
            await self._guard.run("LOGOUT", self._client.logout(), min(5.0, self._access.timeout))
        except (aioimaplib.Abort, aioimaplib.Error, OSError, TimeoutError, PrimaryReplyError, ValueError):
            pass
        finally:
            if self._client.protocol is not None and self._client.protocol.transport is not None:
                self._client.protocol.transport.close()


async def locate(
    access: ImapAccess, mailbox: str, message_id: str, folders: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The folders of mailbox that hold message_id (all folders when folders is None); ImapCheckError on failure."""
    quote(message_id)  # refuse what cannot be searched before connecting
    session = _Session(access)
    try:
        async with asyncio.timeout(access.timeout * 4):
            await session.open(mailbox)
            names = list(folders) if folders is not None else await session.folders()
            found = []
            for name in names:
                if await session.contains(name, message_id):
                    found.append(name)
            return tuple(found)
    except PrimaryReplyError as exc:
        raise ImapCheckError(str(exc)) from exc
    except (aioimaplib.Abort, aioimaplib.Error, OSError, TimeoutError, ssl.SSLError, ValueError, IndexError) as exc:
        raise ImapCheckError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await session.close()
