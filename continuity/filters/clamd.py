"""clamd stage: ClamAV's daemon over its INSTREAM command (TCP or Unix socket).

Used only when ``[filters.clamd] address`` is set. The whole message is streamed in
chunks; clamd answers ``stream: OK`` or ``stream: <signature> FOUND``. Any other answer
or a connection problem raises, and the stage's fail-open setting decides (by default
clamd is fail-closed: unscanned mail is answered 451).
"""

from __future__ import annotations

import asyncio
import struct

from continuity.config.types import parse_host_port
from continuity.core.message_view import MessageView
from continuity.core.pipeline import Envelope, Finding, StageReport

_CHUNK = 256 * 1024


class ClamdError(Exception):
    """clamd did not give a usable answer."""


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("/"):
        return await asyncio.open_unix_connection(address)
    target = parse_host_port(address)
    return await asyncio.open_connection(target.host, target.port)


async def scan_bytes(address: str, data: bytes) -> str | None:
    """The signature name clamd finds in data, or None when it is clean; ClamdError on trouble."""
    try:
        reader, writer = await _open(address)
    except OSError as exc:
        raise ClamdError(f"cannot connect to clamd at {address}: {exc}") from exc
    try:
        writer.write(b"zINSTREAM\0")
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            chunk = view[start : start + _CHUNK]
            writer.write(struct.pack("!I", len(chunk)) + bytes(chunk))
            await writer.drain()
        writer.write(struct.pack("!I", 0))
        await writer.drain()
        reply = (await reader.read(4096)).rstrip(b"\0\n").decode("utf-8", "replace")
    except OSError as exc:
        raise ClamdError(f"clamd at {address} failed: {exc}") from exc
    finally:
        writer.close()
    if reply.endswith(" FOUND"):
        return reply.removeprefix("stream:").removesuffix(" FOUND").strip()
    if reply.endswith(" OK"):
        return None
    raise ClamdError(f"clamd answered {reply!r}")


class ClamdStage:
    """Virus scanning with clamd."""

    name = "clamd"

    def __init__(self, address: str) -> None:
        self._address = address

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        signature = await scan_bytes(self._address, message.raw)
        if signature is None:
            return StageReport()
        return StageReport(
            findings=(Finding("clamd.virus", 10.0, "carries a virus or malware", (signature,)),),
            headers=(("X-Continuity-Virus", signature[:200]),),
        )
