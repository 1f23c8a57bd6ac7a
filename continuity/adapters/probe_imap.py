"""The IMAP probe of the primary (aioimaplib): TLS greeting, login of the canary account, SELECT INBOX."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import aioimaplib

from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult


@dataclass(frozen=True, slots=True)
class ImapProbeTarget:
    """Where and as whom to probe."""

    host: str
    port: int
    user: str
    password: str
    tls: ssl.SSLContext
    timeout: float


async def probe_imap(target: ImapProbeTarget) -> ProbeResult:
    """Run the IMAP probe once; never raises."""
    started = time.monotonic()
    at = time.time()

    def result(outcome: ProbeOutcome, detail: str) -> ProbeResult:
        return ProbeResult("imap", ProbeKind.IMAP, outcome, time.monotonic() - started, detail, at)

    try:
        async with asyncio.timeout(target.timeout):
            client = aioimaplib.IMAP4_SSL(
                host=target.host, port=target.port, timeout=target.timeout, ssl_context=target.tls
            )
            try:
                await client.wait_hello_from_server()
                login = await client.login(target.user, target.password)
                if login.result != "OK":
                    return result(ProbeOutcome.DOWN, f"login of {target.user} refused: {_text(login.lines)}")
                select = await client.select("INBOX")
                if select.result != "OK":
                    return result(ProbeOutcome.DOWN, f"SELECT INBOX failed: {_text(select.lines)}")
                await client.logout()
            finally:
                if client.protocol is not None and client.protocol.transport is not None:
                    client.protocol.transport.close()
    except (TimeoutError, OSError, ssl.SSLError, aioimaplib.Abort, aioimaplib.Error) as exc:
        return result(ProbeOutcome.DOWN, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return result(ProbeOutcome.UP, f"TLS greeting, login of {target.user}, SELECT INBOX")


def _text(lines: list[bytes | bytearray | str]) -> str:
    return " ".join(line.decode(errors="replace") if isinstance(line, bytes | bytearray) else line for line in lines)
