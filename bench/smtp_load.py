"""An SMTP load generator: N concurrent clients over asyncio, counting 250 answers to DATA.

The same generator drives the appliance and the reference server (Postfix), so its
own cost weighs equally on both sides of the ratio.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass

LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"


def make_body(index: int, size: int, recipient: str) -> bytes:
    """A message of about size bytes with a unique Message-ID, dated now (spam filters score old dates)."""
    head = (
        f"From: Load <load@bench.test>\r\nTo: <{recipient}>\r\nSubject: load {index}\r\n"
        f"Message-ID: <{index}.{time.time_ns()}@bench.test>\r\nDate: {email.utils.formatdate()}\r\n\r\n"
    ).encode()
    return head + LINE * max(1, (size - len(head)) // len(LINE))


@dataclass(frozen=True)
class LoadResult:
    """What one run achieved."""

    acknowledged: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages acknowledged with 250 per second."""
        return self.acknowledged / self.seconds if self.seconds else 0.0


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _transaction(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes, rcpt: str) -> bool:
    writer.write(f"MAIL FROM:<load@bench.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
    mail, rcpt_reply, data = await _reply(reader), await _reply(reader), await _reply(reader)
    if not (mail.startswith(b"250") and rcpt_reply.startswith(b"250") and data.startswith(b"354")):
        if data.startswith(b"354"):
            writer.write(b".\r\n")
            await _reply(reader)
        writer.write(b"RSET\r\n")
        await _reply(reader)
        return False
    writer.write(body + b".\r\n")
    return (await _reply(reader)).startswith(b"250")


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    await _reply(reader)
    writer.write(b"EHLO load.bench.test\r\n")
    await _reply(reader)
    return reader, writer


async def run_load(
    host: str, port: int, *, messages: int, clients: int, size: int, recipient: str, reuse_connections: bool
) -> LoadResult:
    """Send messages over clients concurrent connections; one connection per message unless reuse."""
    bodies = [make_body(n, size, recipient) for n in range(messages)]
    next_index = 0
    acknowledged = failed = 0

    async def worker() -> None:
        nonlocal next_index, acknowledged, failed
        connection = await _open(host, port) if reuse_connections else None
        while next_index < messages:
            body = bodies[next_index]
            next_index += 1
            reader, writer = connection if connection is not None else await _open(host, port)
            # Pipelining (RFC 2920): MAIL, RCPT and DATA leave in one write.
            ok = await _transaction(reader, writer, body, recipient)
            acknowledged += ok
            failed += not ok
            if connection is None:
                writer.write(b"QUIT\r\n")
                await _reply(reader)
                writer.close()
        if connection is not None:
            connection[1].write(b"QUIT\r\n")
            connection[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return LoadResult(acknowledged, failed, time.perf_counter() - started)
