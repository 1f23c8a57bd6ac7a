"""Reading the DATA section of an SMTP transaction in large chunks.

aiosmtpd awaits one line at a time; for a typical 10 KB message that is over a hundred
awaits. This reader usually needs two: one byte to learn that the message does not
start with the end marker, then one read up to the end marker. It gives the same bytes
as aiosmtpd: the message ends only at CRLF "." CRLF (RFC 5321 4.1.1.4; a bare LF or CR
never ends it, which keeps SMTP smuggling out), and dot-stuffing is undone as RFC 5321
4.5.2 says. tests/unit/adapters/test_smtp_data_reader.py checks it against aiosmtpd.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

_TERMINATOR = b"\r\n.\r\n"
_CANDIDATE = b".\r\n"
# Single-byte reads allowed before falling back to reading up to the next ".\r\n".
_BYTEWISE_BUDGET = 8


@dataclass(frozen=True, slots=True)
class DataTooLarge:
    """The message exceeded the size limit; it was read to its end and discarded."""


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line exceeded the line length limit; the message was read to its end and discarded."""


def _ends_in_partial(tail: bytes, marker: bytes) -> bool:
    """True when tail ends with a proper prefix of marker (so marker may straddle the boundary)."""
    return any(tail.endswith(marker[:length]) for length in range(1, len(marker)))


class _Collector:
    """The bytes read so far (unless discarding), and the last four for end-marker checks."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.tail = b"\r\n"  # the CRLF of the DATA command precedes the content
        self.too_large = False

    def add(self, data: bytes) -> bool:
        """Record data; True when the end marker has been read."""
        joined = self.tail + data
        self.tail = joined[-4:]
        if not self.too_large:
            self.size += len(data)
            if self.size > self.limit + len(_CANDIDATE):
                self.too_large = True
                self.parts.clear()
            else:
                self.parts.append(data)
        return joined.endswith(_TERMINATOR)

    def discard(self, data: bytes) -> None:
        """Record data that overflowed the size limit."""
        self.too_large = True
        self.parts.clear()
        self.tail = (self.tail + data)[-4:]


async def _read_until_end(reader: asyncio.StreamReader, collector: _Collector) -> None:
    budget = _BYTEWISE_BUDGET
    while True:
        try:
            if not _ends_in_partial(collector.tail, _TERMINATOR):
                # The end marker cannot straddle what was read: read straight to it.
                if collector.add(await reader.readuntil(_TERMINATOR)):
                    return
            elif budget > 0 or _ends_in_partial(collector.tail, _CANDIDATE):
                budget -= 1
                if collector.add(await reader.readexactly(1)):
                    return
            else:
                # Many short lines (e.g. a flood of empty lines): read up to the next
                # line that ends in "." and check whether it is the end marker.
                budget = _BYTEWISE_BUDGET
                if collector.add(await reader.readuntil(_CANDIDATE)):
                    return
        except asyncio.LimitOverrunError as overrun:
            collector.discard(await reader.read(overrun.consumed))


async def read_data(
    reader: asyncio.StreamReader, size_limit: int | None, line_limit: int
) -> bytes | DataTooLarge | LineTooLong:
    """Read DATA up to and excluding the end marker; return the unstuffed content or why not."""
    limit = size_limit or (1 << 62)
    collector = _Collector(limit)
    # StreamReader has no public setter for its buffer limit, which normally caps a
    # command line; raise it for the message and restore it afterwards.
    saved_limit: int = reader._limit  # type: ignore[attr-defined]
    reader._limit = min(limit, 1 << 30) + len(_TERMINATOR)  # type: ignore[attr-defined]
    try:
        await _read_until_end(reader, collector)
    finally:
        reader._limit = saved_limit  # type: ignore[attr-defined]
    if collector.too_large:
        return DataTooLarge()
    raw = b"".join(collector.parts)[: -len(_CANDIDATE)]
    if len(raw) > limit:
        return DataTooLarge()
    if len(raw) + 2 > line_limit and max(map(len, raw.split(b"\r\n"))) + 2 > line_limit:
        return LineTooLong()
    content = raw.replace(b"\r\n.", b"\r\n")
    if content.startswith(b"."):
        content = content[1:]
    return content
