"""A kept SMTP client connection that pipelines each mail transaction (RFC 2920), for the replay.

Written here rather than taken from aiosmtplib, which the rest of the appliance uses:
aiosmtplib reads exactly one reply per command (a reply that arrives before the previous
one is picked up is dropped), so it cannot pipeline, and its per-reply waits cost about
60 µs of CPU per message, most of what delivering a replayed message costs the
delivering process. Here, when the server offers PIPELINING, MAIL, every RCPT and DATA
go out in one write and their replies are read together, then the message: two round
trips per message instead of three plus one per recipient. Without PIPELINING the same
commands go one at a time.

The connection says EHLO (HELO when EHLO is refused), does STARTTLS as the TLS policy
says (``opportunistic``: when offered, certificate not checked; ``required``: offered
and valid for the host name, or no delivery; ``none``), then EHLO again. Every wait for a
reply is bounded by the timeout. What the server refuses is returned as its reply; a
lost connection, a timeout or a reply that is not SMTP raises ``SmtpConnectionError``;
a refused greeting or EHLO raises ``SmtpReplyError`` with the server's code.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from continuity.adapters.smtp_transaction import data_bytes, smtp_path
from continuity.config.outbound import TlsPolicy

_MAX_LINE = 2048  # bytes in one reply line (RFC 5321 allows 512; some servers say more)
_MAX_REPLY = 64 * 1024  # bytes of one (multi-line) reply
_QUIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: its code and its text (lines joined with newlines)."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SmtpConnectionError(Exception):
    """The connection failed: cannot connect, lost, timed out, or the server does not speak SMTP."""


class SmtpReplyError(Exception):
    """The server refused the session (its greeting, EHLO/HELO or STARTTLS reply)."""

    def __init__(self, reply: Reply, step: str) -> None:
        super().__init__(f"{step}: {reply}")
        self.reply = reply


class _ReplyReader(asyncio.Protocol):
    """Collects the server's replies and hands them, in order, to the commands waiting for them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiters: collections.deque[asyncio.Future[Reply]] = collections.deque()
        self._failure: SmtpConnectionError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream transport (uvloop's is no subclass)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._deliver()

    def eof_received(self) -> bool:
        self._fail(SmtpConnectionError("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(SmtpConnectionError(f"connection lost: {exc}" if exc else "the server closed the connection"))

    def expect(self, count: int) -> list[asyncio.Future[Reply]]:
        """Futures for the next count replies (commands already written or about to be)."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        if self._failure is not None:
            for future in futures:
                future.set_exception(self._failure)
            return futures
        self._waiters.extend(futures)
        self._deliver()
        return futures

    def _deliver(self) -> None:
        while self._waiters:
            try:
                reply = self._next_reply()
            except SmtpConnectionError as exc:
                self._fail(exc)
                if self.transport is not None:
                    self.transport.abort()
                return
            if reply is None:
                return
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(reply)

    def _next_reply(self) -> Reply | None:
        """The first complete reply in the buffer (removed from it), or None while it is incomplete."""
        lines: list[bytes] = []
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end == -1:
                if len(self._buffer) - start > _MAX_LINE or len(self._buffer) > _MAX_REPLY:
                    raise SmtpConnectionError("the server sent a reply line that is far too long")
                return None
            line = bytes(self._buffer[start : end + 1]).rstrip(b"\r\n")
            start = end + 1
            if len(line) > _MAX_LINE or start > _MAX_REPLY:
                raise SmtpConnectionError("the server sent a reply that is far too long")
            code = line[:3]
            if len(line) < 3 or not code.isdigit() or line[3:4] not in (b"", b" ", b"-"):
                text = line[:80].decode("utf-8", "replace")
                raise SmtpConnectionError(f"the server sent something that is not an SMTP reply: {text!r}")
            if lines and code != lines[0][:3]:
                raise SmtpConnectionError("the server changed the reply code inside a multi-line reply")
            lines.append(line)
            if line[3:4] != b"-":
                break
        del self._buffer[:start]
        text = "\n".join(line[4:].decode("utf-8", "surrogateescape").strip() for line in lines)
        return Reply(int(lines[0][:3]), text)

    def _fail(self, failure: SmtpConnectionError) -> None:
        if self._failure is None:
            self._failure = failure
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(self._failure)


def _tls_context(policy: TlsPolicy, ca_file: Path | None) -> ssl.SSLContext:
    if policy is TlsPolicy.REQUIRED:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context = ssl.create_default_context()
    context.check_hostname = False  # opportunistic (RFC 7435): encrypt, do not authenticate
    context.verify_mode = ssl.CERT_NONE
    return context


class PipelinedSmtp:
    """One open SMTP connection; see the module docstring. Use ``open``, then ``send`` for each message."""

    def __init__(self, reader: _ReplyReader, host: str, port: int, timeout: float) -> None:
        self._reader = reader
        self.host = host
        self.port = port
        self._timeout = timeout
        self.extensions: dict[str, str] = {}

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        helo: str,
        step_seconds: float,
        tls: TlsPolicy,
        ca_file: Path | None = None,
    ) -> PipelinedSmtp:
        """Connect, read the greeting, EHLO, STARTTLS per the policy (ssl.SSLError when its handshake fails)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(step_seconds):
                _, reader = await loop.create_connection(_ReplyReader, host, port)
        except (OSError, TimeoutError) as exc:
            raise SmtpConnectionError(f"cannot connect to {host}:{port}: {exc or 'timed out'}") from None
        connection = cls(reader, host, port, step_seconds)
        try:
            greeting = await connection._replies(1, "the greeting")
            if greeting[0].code != 220:
                raise SmtpReplyError(greeting[0], "greeting")
            await connection._hello(helo)
            if tls is not TlsPolicy.NONE:
                await connection._start_tls(helo, tls, ca_file)
        except BaseException:
            connection.abort()
            raise
        return connection

    @property
    def is_open(self) -> bool:
        """Whether the connection can still carry a transaction."""
        transport = self._reader.transport
        return transport is not None and not transport.is_closing()

    @property
    def pipelining(self) -> bool:
        """Whether the server offered PIPELINING."""
        return "pipelining" in self.extensions

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, Reply]:
        """One transaction; every recipient's reply: its RCPT refusal, or the reply to the message.

        A refused transaction is reset (RSET) so the connection can take the next one.
        """
        wants_utf8 = not (sender.isascii() and all(recipient.isascii() for recipient in recipients))
        utf8 = wants_utf8 and "smtputf8" in self.extensions
        payload, size = data_bytes(message)
        sender_path = smtp_path(sender, utf8) if sender else b"<>"
        if sender_path is None:
            reason = "needs SMTPUTF8, which the server does not offer" if wants_utf8 else "is not a valid SMTP address"
            return dict.fromkeys(recipients, Reply(553, f"the sender {sender!r} {reason}"))
        answers: dict[str, Reply] = {}
        paths: list[tuple[str, bytes]] = []
        for recipient in recipients:
            path = smtp_path(recipient, utf8)
            if path is None:
                answers[recipient] = Reply(553, "not a valid SMTP address, or needs SMTPUTF8")
            else:
                paths.append((recipient, path))
        if not paths:
            return answers
        options = b" SIZE=%d" % size if "size" in self.extensions else b""
        if utf8:
            options += b" SMTPUTF8"
        commands = [b"MAIL FROM:" + sender_path + options + b"\r\n"]
        commands += [b"RCPT TO:" + path + b"\r\n" for _, path in paths]
        commands.append(b"DATA\r\n")
        replies = await self._commands(commands)
        mail, rcpts, data = replies[0], replies[1:-1], replies[-1]
        if mail.code != 250:
            await self._reset(data)
            return {**answers, **dict.fromkeys((recipient for recipient, _ in paths), mail)}
        accepted = []
        for (recipient, _), reply in zip(paths, rcpts, strict=True):
            if reply.code in (250, 251):
                accepted.append(recipient)
            else:
                answers[recipient] = reply
        if not accepted or data.code != 354:
            await self._reset(data)
            refusal = data if data.code != 354 else Reply(554, "no valid recipients")
            return {**answers, **dict.fromkeys(accepted, refusal)}
        self._write(payload)
        (final,) = await self._replies(1, "the reply to the message")
        if final.code != 250:
            await self._reset(None)
        return {**answers, **dict.fromkeys(accepted, final)}

    async def quit(self) -> None:
        """QUIT (best effort, briefly) and close."""
        try:
            if self.is_open:
                self._write(b"QUIT\r\n")
                async with asyncio.timeout(_QUIT_SECONDS):
                    await self._reader.expect(1)[0]
        except (SmtpConnectionError, TimeoutError):
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        """Close at once."""
        transport = self._reader.transport
        if transport is not None:
            transport.abort()

    # -- steps ----------------------------------------------------------------------------

    async def _hello(self, helo: str) -> None:
        (reply,) = await self._commands([b"EHLO " + helo.encode("ascii", "replace") + b"\r\n"])
        if reply.code != 250:
            (reply,) = await self._commands([b"HELO " + helo.encode("ascii", "replace") + b"\r\n"])
            if reply.code != 250:
                raise SmtpReplyError(reply, "HELO")
            self.extensions = {}
            return
        extensions: dict[str, str] = {}
        for line in reply.text.splitlines()[1:]:
            keyword, _, parameters = line.strip().partition(" ")
            extensions[keyword.lower()] = parameters
        self.extensions = extensions

    async def _start_tls(self, helo: str, policy: TlsPolicy, ca_file: Path | None) -> None:
        if "starttls" not in self.extensions:
            if policy is TlsPolicy.REQUIRED:
                raise SmtpConnectionError(f"{self.host}:{self.port} does not offer STARTTLS, which is required")
            return
        (reply,) = await self._commands([b"STARTTLS\r\n"])
        if reply.code != 220:
            if policy is TlsPolicy.REQUIRED:
                raise SmtpReplyError(reply, "STARTTLS")
            return
        transport = self._reader.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                upgraded = await loop.start_tls(
                    transport, self._reader, _tls_context(policy, ca_file), server_hostname=self.host
                )
        except TimeoutError:
            raise SmtpConnectionError(f"the TLS handshake with {self.host}:{self.port} timed out") from None
        except ConnectionError as exc:
            raise SmtpConnectionError(f"connection lost during the TLS handshake: {exc}") from None
        if upgraded is None:
            raise SmtpConnectionError("the connection closed during the TLS handshake")
        self._reader.transport = upgraded
        await self._hello(helo)

    async def _reset(self, pending: Reply | None) -> None:
        """RSET after a refusal; a DATA that was accepted anyway gets an empty message first (RFC 2920)."""
        commands = [b".\r\n"] if pending is not None and pending.code == 354 else []
        replies = await self._commands([*commands, b"RSET\r\n"])
        if replies[-1].code != 250:
            self.abort()  # the server will not reset: this connection cannot be reused

    # -- the wire -------------------------------------------------------------------------

    async def _commands(self, commands: list[bytes]) -> list[Reply]:
        """Send commands (together when the server pipelines, else one at a time); their replies."""
        if self.pipelining or len(commands) == 1:
            futures = self._reader.expect(len(commands))
            self._write(b"".join(commands))
            return await self._await(futures, commands[0].split(b" ", 1)[0].strip().decode("ascii", "replace"))
        replies: list[Reply] = []
        for command in commands:
            replies.extend(await self._commands([command]))
            if command.startswith(b"MAIL") and replies[-1].code != 250:
                # Without pipelining nothing more is sent; stand-in replies keep the shape.
                missing = len(commands) - len(replies)
                return replies + [Reply(503, "not sent: the sender was refused")] * missing
        return replies

    async def _replies(self, count: int, what: str) -> list[Reply]:
        return await self._await(self._reader.expect(count), what)

    async def _await(self, futures: list[asyncio.Future[Reply]], what: str) -> list[Reply]:
        try:
            async with asyncio.timeout(self._timeout):
                return [await future for future in futures]
        except TimeoutError:
            self.abort()
            raise SmtpConnectionError(
                f"{self.host}:{self.port} sent no reply to {what} within {self._timeout:g}s"
            ) from None

    def _write(self, data: bytes) -> None:
        transport = self._reader.transport
        if transport is None or transport.is_closing():
            raise SmtpConnectionError("the connection is closed")
        transport.write(data)
