"""Reading the DATA section of an SMTP transaction in large chunks.

aiosmtpd awaits one line at a time; for a typical 10 KB message that is a hundred
awaits. This reads up to each line that ends in a period (a candidate end marker)
instead, which is a handful of reads, and gives the same bytes: the message ends only
at CRLF "." CRLF (RFC 5321 4.1.1.4; bare LF or CR never end it, which keeps SMTP
smuggling out), and dot-stuffing is undone as RFC 5321 4.5.2 says.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

_TERMINATOR = b"\r\n.\r\n"
_CANDIDATE = b".\r\n"


@dataclass(frozen=True, slots=True)
class DataTooLarge:
    """The message exceeded the size limit; it was read to its end and discarded."""


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line exceeded the line length limit; the message was read to its end and discarded."""


async def read_data(
    reader: asyncio.StreamReader, size_limit: int | None, line_limit: int
) -> bytes | DataTooLarge | LineTooLong:
    """Read DATA up to and excluding the end marker; return the unstuffed content or why not."""
    limit = size_limit or (1 << 62)
    # StreamReader has no public setter for its buffer limit, which normally caps a
    # command line; raise it for the message and restore it afterwards.
    saved_limit = reader._limit  # noqa: SLF001
    reader._limit = min(limit, 1 << 30) + len(_TERMINATOR)  # noqa: SLF001
    chunks: list[bytes] = []
    size = 0
    tail = b"\r\n"  # the CRLF of the DATA command precedes the content
    too_large = False
    try:
        while True:
            try:
                chunk = await reader.readuntil(_CANDIDATE)
            except asyncio.LimitOverrunError as overrun:
                discarded = await reader.read(overrun.consumed)
                too_large = True
                chunks.clear()
                tail = (tail + discarded)[-4:]
                continue
            joined = tail + chunk
            if joined.endswith(_TERMINATOR):
                chunk = chunk[: -len(_CANDIDATE)]
                if not too_large:
                    chunks.append(chunk)
                    size += len(chunk)
                break
            tail = joined[-4:]
            if not too_large:
                size += len(chunk)
                if size > limit:
                    too_large = True
                    chunks.clear()
                else:
                    chunks.append(chunk)
    finally:
        reader._limit = saved_limit  # noqa: SLF001
    if too_large or size > limit:
        return DataTooLarge()
    raw = b"".join(chunks)
    if len(raw) + 2 > line_limit and max(map(len, raw.split(b"\r\n"))) + 2 > line_limit:
        return LineTooLong()
    content = raw.replace(b"\r\n.", b"\r\n")
    if content.startswith(b"."):
        content = content[1:]
    return content
