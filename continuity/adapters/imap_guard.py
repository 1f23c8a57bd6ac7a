"""Bounds on what the primary's IMAP server sends: line and literal sizes, line counts, a deadline per command.

The primary may be compromised, and aioimaplib reads without bounds: it keeps any literal
the server announces, joins every line of a FETCH reply again for each new line (quadratic),
parses a chunk recursively (one stack frame per line), and restarts its timeout on every
byte (a server dripping one byte at a time never times out). No maintained asyncio IMAP
client bounds its replies, so :class:`ReplyGuard` stands in front of aioimaplib's protocol:
it frames the byte stream itself in one linear pass (lines end with CRLF, a line ending in
``{n}`` announces n bytes of literal), counts against the budget of the command running
now, and hands aioimaplib one line or one piece of literal at a time. A reply over a budget
drops the connection and fails the command with continuity.errors.PrimaryReplyError naming
the bound and the server; :meth:`ReplyGuard.run` also gives every command a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from continuity.errors import PrimaryReplyError

_T = TypeVar("_T")
_KIB = 1024
_MIB = 1024 * 1024
# A FETCH of replay markers asks for one header of at most 50 messages: a few lines each.
_FETCH_LINES = 512
_FETCH_LINE = 8 * _KIB
# aioimaplib joins a FETCH reply's text lines again for each line: its text stays small.
_FETCH_TEXT = 256 * _KIB
# More digits than any literal we accept can have; longer is refused before int() reads it.
_LITERAL_DIGITS = 12


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    """The bounds of the primary's replies (the [replay] reply_* settings)."""

    line: int = 64 * _KIB  # one line of any reply but SEARCH's result
    lines: int = 100_000  # lines of one reply (untagged, continuation and tagged)
    fetch: int = 4 * _MIB  # literal bytes of one FETCH reply (the headers of at most 50 messages)
    listing: int = 16 * _MIB  # one SEARCH result line, and all the lines of one LIST or SEARCH reply

    def budget(self, command: str) -> Budget:
        """What a reply to command may hold."""
        name = command.upper()
        if name == "FETCH":
            return Budget(name, _FETCH_LINE, _FETCH_TEXT, self.fetch, min(_FETCH_LINES, self.lines), 0)
        if name == "SEARCH":
            return Budget(name, self.listing, self.listing, self.line, self.lines, 0)
        if name == "LIST":
            return Budget(name, self.line, self.listing, self.line, self.lines, 0)
        # AUTHENTICATE: the request for the initial response (no SASL-IR) and one error challenge.
        continuations = {"APPEND": 1, "AUTHENTICATE": 2}.get(name, 0)
        return Budget(name, self.line, _MIB + self.line, self.line, min(10_000, self.lines), continuations)


@dataclass(frozen=True, slots=True)
class Budget:
    """The bounds of one reply: longest line, all text lines, all literals, line count, continuation requests."""

    command: str
    line: int
    text: int
    literals: int
    lines: int
    continuations: int


class ReplyGuard:
    """Frames and bounds the bytes of one connection before aioimaplib sees them (see the module docstring)."""

    def __init__(
        self,
        server: str,
        limits: ReplyLimits,
        deliver: Callable[[bytes], None],
        drop: Callable[[], None],
    ) -> None:
        self.server = server
        self.limits = limits
        self._deliver = deliver
        self._drop = drop
        self._line = bytearray()
        self._literal_left = 0
        self.error: PrimaryReplyError | OSError | None = None
        self._failed = asyncio.Event()
        self.watch("greeting")

    def watch(self, command: str) -> None:
        """A new command starts: its reply is counted against its own budget from now on."""
        self._budget = self.limits.budget(command)
        self._lines = 0
        self._text = 0
        self._literals = 0
        self._continuations = 0

    # -- the byte stream ----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """What the connection received (stands in for the protocol's data_received)."""
        position, size = 0, len(data)
        while position < size and self.error is None:
            if self._literal_left:
                piece = data[position : position + self._literal_left]
                self._literal_left -= len(piece)
                position += len(piece)
                self._deliver(piece)
                continue
            end = data.find(b"\n", position)
            stop = size if end < 0 else end + 1
            if len(self._line) + stop - position > self._budget.line:
                self._exceeded("line", f"a line of more than {self._budget.line} bytes")
                return
            self._line += data[position:stop]
            position = stop
            if end >= 0:
                line = bytes(self._line)
                self._line.clear()
                self._complete(line)

    def _complete(self, line: bytes) -> None:
        if not line.endswith(b"\r\n"):
            self._fail(PrimaryReplyError(self.server, "syntax", f"a {self._budget.command} reply line ends without CR"))
            return
        self._lines += 1
        self._text += len(line)
        if self._lines > self._budget.lines:
            self._exceeded("lines", f"more than {self._budget.lines} lines")
            return
        if self._text > self._budget.text:
            self._exceeded("text", f"more than {self._budget.text} bytes of lines")
            return
        if line.startswith(b"+"):
            self._continuations += 1
            if self._continuations > self._budget.continuations:
                self._exceeded("continuations", f"more than {self._budget.continuations} continuation request(s)")
                return
        announced = _literal_size(line)
        if announced is not None:
            self._literals += announced
            if self._literals > self._budget.literals:
                self._exceeded(
                    "literal", f"a literal of {announced} bytes (more than {self._budget.literals} in one reply)"
                )
                return
            self._literal_left = announced
        self._deliver(line)

    # -- failing ------------------------------------------------------------------------------

    def _exceeded(self, bound: str, what: str) -> None:
        self._fail(
            PrimaryReplyError(
                self.server, f"{self._budget.command} {bound}", f"the reply to {self._budget.command} had {what}"
            )
        )

    def _fail(self, error: PrimaryReplyError | OSError) -> None:
        if self.error is None:
            self.error = error
            self._failed.set()
            self._drop()

    def lost(self, exc: Exception | None) -> None:
        """The connection closed (stands in beside the protocol's connection_lost)."""
        if self.error is None:
            self.error = ConnectionResetError(f"IMAP {self.server} closed the connection" + (f": {exc}" if exc else ""))
            self._failed.set()

    async def run(self, command: str, work: Awaitable[_T], deadline: float) -> _T:
        """Run one command under its budget and deadline; PrimaryReplyError when the reply breaks a bound.

        OSError when the connection was lost before the command finished.
        """
        if self.error is not None:
            _close(work)
            raise self.error
        self.watch(command)
        task: asyncio.Future[_T] = asyncio.ensure_future(work)
        failed: asyncio.Future[Any] = asyncio.ensure_future(self._failed.wait())
        waiting: set[asyncio.Future[Any]] = {task, failed}
        try:
            done, _ = await asyncio.wait(waiting, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            failed.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if not done:
            self._fail(
                PrimaryReplyError(self.server, f"{command} deadline", f"{command} did not finish within {deadline:g} s")
            )
        assert self.error is not None
        raise self.error


def _literal_size(line: bytes) -> int | None:
    """n when line ends with ``{n}`` CRLF, as aioimaplib reads it (one backward search, no regular expression).

    More digits than any accepted literal can have count as the largest size, so the caller refuses it.
    """
    if not line.endswith(b"}\r\n"):
        return None
    start = line.rfind(b"{")
    digits = line[start + 1 : -3] if start >= 0 else b""
    if not digits.isdigit():
        return None
    return int(digits) if len(digits) <= _LITERAL_DIGITS else 10**_LITERAL_DIGITS


def _close(work: Awaitable[Any]) -> None:
    close = getattr(work, "close", None)
    if callable(close):
        close()


def guard_client(client: Any, server: str, limits: ReplyLimits) -> ReplyGuard:
    """Put a ReplyGuard between an aioimaplib client's connection and its protocol (before it connects)."""
    protocol = client.protocol
    received = protocol.data_received
    closed = protocol.connection_lost

    def drop() -> None:
        if protocol.transport is not None:
            protocol.transport.abort()

    guard = ReplyGuard(server, limits, received, drop)

    def connection_lost(exc: Exception | None) -> None:
        guard.lost(exc)
        closed(exc)

    protocol.data_received = guard.feed
    protocol.connection_lost = connection_lost
    return guard
