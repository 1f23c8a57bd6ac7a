"""A compromised primary's IMAP for tests: a small IMAPS server on 127.0.0.1 that can answer with hostile replies.

In its normal behaviour it is an in-memory IMAP4rev1 server, correct enough for the
replay: LOGIN (any password; ``alice@example.com*replay`` opens alice's mailbox), LIST,
SELECT, CREATE, APPEND (with ``[TRYCREATE]`` for a missing folder and ``APPENDUID``),
SEARCH / UID SEARCH by a header, FETCH / UID FETCH of header fields, UID STORE, UID MOVE,
LOGOUT. Every APPEND is recorded, so a test can count the copies of each message.

``hostile`` maps a command (LIST, SEARCH, FETCH, APPEND) to a :class:`Hostility`: that
command is then answered with it instead. A hostile FETCH also makes SEARCH find message 1,
so the replay's duplicate check goes on to FETCH. Written for the tests (not a proxy to
Dovecot) so that each hostile reply is exactly what is sent, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import trustme

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_CHUNK = 64 * 1024


class Hostility(StrEnum):
    """How a hostile reply misbehaves."""

    # Thousands of backslashes and quotes in a quoted string, within the line limit.
    QUOTING = "quoting"
    # The same, in a line far over the line limit (a megabyte).
    QUOTING_HUGE = "quoting_huge"
    # A literal of two billion bytes is announced (and never sent).
    HUGE_LITERAL = "huge_literal"
    # 100 MB of literals are actually streamed, a megabyte at a time.
    STREAMED_LITERALS = "streamed_literals"
    # Untagged lines that never end.
    ENDLESS_UNTAGGED = "endless_untagged"
    # Continuation requests ("+") that never end.
    ENDLESS_CONTINUATION = "endless_continuation"
    # One line that never ends (no CRLF).
    ENDLESS_LINE = "endless_line"
    # A correct reply, one byte every 100 ms.
    SLOW_DRIP = "slow_drip"


@dataclass
class Message:
    """One stored message."""

    uid: int
    data: bytes
    flags: str

    def header(self, name: str) -> str | None:
        """The header field's value, None when the message has none."""
        value = email.message_from_bytes(self.data, policy=email.policy.compat32).get(name)
        return None if value is None else str(value)


@dataclass
class Mailbox:
    """The folders of one user."""

    folders: dict[str, list[Message]] = field(default_factory=lambda: {"INBOX": []})
    next_uid: int = 1


def _tokens(text: str) -> list[str]:
    """Arguments of a command line: atoms, quoted strings (unquoted), parenthesised lists (as written)."""
    tokens: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == " ":
            index += 1
        elif char == '"':
            out, index = [], index + 1
            while index < len(text) and text[index] != '"':
                if text[index] == "\\":
                    index += 1
                out.append(text[index])
                index += 1
            tokens.append("".join(out))
            index += 1
        elif char == "(":
            end = text.find(")", index)
            end = len(text) - 1 if end < 0 else end
            tokens.append(text[index : end + 1])
            index = end + 1
        else:
            end = text.find(" ", index)
            end = len(text) if end < 0 else end
            tokens.append(text[index:end])
            index = end
    return tokens


def _sequence(spec: str) -> set[int]:
    numbers: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        numbers.update(range(int(low), int(high or low) + 1))
    return numbers


class HostileImapServer:
    """IMAPS on 127.0.0.1, normal or hostile per command (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = workdir / "hostile-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1").configure_cert(self._tls)
        self.port = 0
        self.hostile: dict[str, Hostility] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.appended: list[bytes] = []
        self.hostile_replies = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def copies(self, marker_text: str) -> int:
        """How many APPENDed messages contain marker_text."""
        return sum(marker_text.encode() in data for data in self.appended)

    # -- one connection -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()


class _Session:
    def __init__(self, server: HostileImapServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.mailbox: Mailbox | None = None
        self.selected: str | None = None

    async def send(self, data: bytes) -> None:
        # drain() does not raise once the peer is gone (the transport is closing): the endless replies would spin.
        if self.writer.is_closing() or self.reader.at_eof():
            raise ConnectionResetError("the client closed the connection")
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        await self.send(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE] hostile stand-in ready\r\n")
        while line := await self.reader.readuntil(b"\r\n"):
            tag, _, rest = line[:-2].decode("utf-8", "replace").partition(" ")
            words = rest.split(" ", 1)
            command = words[0].upper()
            arguments = words[1] if len(words) > 1 else ""
            if command == "UID":
                command, _, arguments = arguments.partition(" ")
                command = "UID " + command.upper()
            literal = _LITERAL.search(line)
            plain = command.removeprefix("UID ")
            hostility = self.server.hostile.get(plain)
            if hostility is not None and plain != "APPEND":
                self.server.hostile_replies += 1
                await _HOSTILE[hostility](self, tag, plain)
                continue
            if command == "APPEND":
                await self._append(tag, arguments, int(literal.group(1)) if literal else 0, hostility)
                continue
            handler = self._handlers().get(command)
            if handler is None:
                await self.send(f"{tag} BAD unknown command\r\n".encode())
                continue
            await handler(tag, _tokens(arguments))
            if command == "LOGOUT":
                return

    def _handlers(self) -> dict[str, Callable[[str, list[str]], Awaitable[None]]]:
        return {
            "CAPABILITY": self._capability,
            "NOOP": self._ok,
            "LOGIN": self._login,
            "LIST": self._list,
            "SELECT": self._select,
            "CREATE": self._create,
            "SEARCH": lambda tag, args: self._search(tag, args, by_uid=False),
            "UID SEARCH": lambda tag, args: self._search(tag, args, by_uid=True),
            "FETCH": lambda tag, args: self._fetch(tag, args, by_uid=False),
            "UID FETCH": lambda tag, args: self._fetch(tag, args, by_uid=True),
            "UID STORE": self._ok,
            "UID MOVE": self._ok,
            "LOGOUT": self._logout,
        }

    async def _ok(self, tag: str, _args: list[str]) -> None:
        await self.send(f"{tag} OK done\r\n".encode())

    async def _capability(self, tag: str, _args: list[str]) -> None:
        await self.send(f"* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n{tag} OK done\r\n".encode())

    async def _login(self, tag: str, args: list[str]) -> None:
        name = args[0].partition("*")[0]
        self.mailbox = self.server.mailboxes.setdefault(name, Mailbox())
        await self.send(f"{tag} OK logged in\r\n".encode())

    async def _logout(self, tag: str, _args: list[str]) -> None:
        await self.send(f"* BYE\r\n{tag} OK bye\r\n".encode())

    async def _list(self, tag: str, args: list[str]) -> None:
        assert self.mailbox is not None
        if len(args) > 1 and args[1] == "":
            await self.send(f'* LIST (\\Noselect) "/" ""\r\n{tag} OK done\r\n'.encode())
            return
        lines = "".join(f'* LIST () "/" "{name}"\r\n' for name in self.mailbox.folders)
        await self.send(f"{lines}{tag} OK done\r\n".encode())

    async def _select(self, tag: str, args: list[str]) -> None:
        assert self.mailbox is not None
        messages = self.mailbox.folders.get(args[0])
        if messages is None:
            await self.send(f"{tag} NO [NONEXISTENT] no such folder\r\n".encode())
            return
        self.selected = args[0]
        reply = f"* {len(messages)} EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n{tag} OK [READ-WRITE] selected\r\n"
        await self.send(reply.encode())

    async def _create(self, tag: str, args: list[str]) -> None:
        assert self.mailbox is not None
        if args[0] in self.mailbox.folders:
            await self.send(f"{tag} NO [ALREADYEXISTS] exists\r\n".encode())
            return
        self.mailbox.folders[args[0]] = []
        await self.send(f"{tag} OK created\r\n".encode())

    def _messages(self) -> list[Message]:
        assert self.mailbox is not None and self.selected is not None
        return self.mailbox.folders[self.selected]

    async def _search(self, tag: str, args: list[str], *, by_uid: bool) -> None:
        # HEADER name value, as the replay asks: the numbers of the messages whose field contains value
        if "FETCH" in self.server.hostile:
            await self.send(f"* SEARCH 1\r\n{tag} OK done\r\n".encode())
            return
        name, value = args[1], args[2]
        found = [
            str(message.uid if by_uid else index + 1)
            for index, message in enumerate(self._messages())
            if value in (message.header(name) or "\0")
        ]
        await self.send(f"* SEARCH {' '.join(found)}\r\n{tag} OK done\r\n".encode())

    async def _fetch(self, tag: str, args: list[str], *, by_uid: bool) -> None:
        wanted = _sequence(args[0])
        out = bytearray()
        for index, message in enumerate(self._messages()):
            if (message.uid if by_uid else index + 1) not in wanted:
                continue
            value = message.header("X-Continuity-Replay") or ""
            block = f"X-Continuity-Replay: {value}\r\n\r\n".encode()
            out += f"* {index + 1} FETCH (UID {message.uid} BODY[HEADER.FIELDS (X-CONTINUITY-REPLAY)] ".encode()
            out += b"{%d}\r\n" % len(block) + block + b")\r\n"
        await self.send(bytes(out) + f"{tag} OK done\r\n".encode())

    async def _append(self, tag: str, arguments: str, size: int, hostility: Hostility | None) -> None:
        assert self.mailbox is not None
        args = _tokens(arguments)
        folder = args[0]
        if folder not in self.mailbox.folders and hostility is None:
            await self.send(f"{tag} NO [TRYCREATE] no such folder\r\n".encode())
            return
        await self.send(b"+ Ready for literal data\r\n")
        data = await self.reader.readexactly(size)
        await self.reader.readuntil(b"\r\n")
        if hostility is not None:
            self.server.hostile_replies += 1
            await _HOSTILE[hostility](self, tag, "APPEND")
            return
        flags = next((arg for arg in args[1:] if arg.startswith("(")), "()")
        message = Message(self.mailbox.next_uid, data, flags)
        self.mailbox.next_uid += 1
        self.mailbox.folders[folder].append(message)
        self.server.appended.append(data)
        await self.send(f"{tag} OK [APPENDUID 1 {message.uid}] appended\r\n".encode())


# -- the hostile replies ------------------------------------------------------------------------


def _untagged(command: str) -> bytes:
    return {"LIST": b'* LIST () "/" ', "SEARCH": b"* SEARCH ", "FETCH": b"* 1 FETCH (UID 1 BODY[HEADER] "}.get(
        command, b"* OK "
    )


async def _quoting(session: _Session, tag: str, command: str, size: int = 60_000) -> None:
    # Backslashes and quotes the way a backtracking pattern suffers most: never closed.
    body = b'"' + b'\\"\\\\' * (size // 4) + b"\r\n"
    await session.send(_untagged(command) + body + _untagged(command) + b'"' + b"\\" * (size - 10) + b"\r\n")
    await session.send(f"{tag} OK done\r\n".encode())


async def _quoting_huge(session: _Session, tag: str, command: str) -> None:
    await _quoting(session, tag, command, 1_000_000)


async def _huge_literal(session: _Session, tag: str, command: str) -> None:
    await session.send(_untagged(command) + b"{2000000000}\r\n")
    await asyncio.sleep(3600)


async def _streamed_literals(session: _Session, tag: str, command: str) -> None:
    megabyte = b"x" * 1_000_000
    for number in range(1, 101):
        await session.send(
            f"* {number} FETCH (UID {number} BODY[HEADER] {{1000000}}\r\n".encode() + megabyte + b")\r\n"
        )
    await session.send(f"{tag} OK done\r\n".encode())


async def _endless_untagged(session: _Session, tag: str, command: str) -> None:
    line = _untagged(command) + b"still working\r\n" if command != "SEARCH" else b"* OK still searching\r\n"
    while True:
        await session.send(line * 1000)


async def _endless_continuation(session: _Session, tag: str, command: str) -> None:
    while True:
        await session.send(b"+ more, please\r\n" * 1000)


async def _endless_line(session: _Session, tag: str, command: str) -> None:
    await session.send(_untagged(command))
    piece = b" 1234567" * (_CHUNK // 8)
    while True:
        await session.send(piece)


async def _slow_drip(session: _Session, tag: str, command: str) -> None:
    reply = _untagged(command) + b"INBOX\r\n" + f"{tag} OK done\r\n".encode()
    for byte in reply:
        await session.send(bytes([byte]))
        await asyncio.sleep(0.1)


_HOSTILE: dict[Hostility, Callable[[_Session, str, str], Awaitable[None]]] = {
    Hostility.QUOTING: _quoting,
    Hostility.QUOTING_HUGE: _quoting_huge,
    Hostility.HUGE_LITERAL: _huge_literal,
    Hostility.STREAMED_LITERALS: _streamed_literals,
    Hostility.ENDLESS_UNTAGGED: _endless_untagged,
    Hostility.ENDLESS_CONTINUATION: _endless_continuation,
    Hostility.ENDLESS_LINE: _endless_line,
    Hostility.SLOW_DRIP: _slow_drip,
}
