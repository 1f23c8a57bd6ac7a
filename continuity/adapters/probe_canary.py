"""The canary round trip: a message sent through the primary's SMTP must appear in the canary mailbox over IMAP.

It proves what the other probes cannot: that the primary really accepts, routes and
stores mail. The message carries a unique token in its subject; the probe searches the
canary's INBOX for it until the deadline, then deletes what it found.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aioimaplib
import aiosmtplib

from continuity.adapters.probe_imap import ImapProbeTarget
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult


@dataclass(frozen=True, slots=True)
class CanaryTarget:
    """The primary's SMTP and the canary mailbox."""

    smtp_host: str
    smtp_port: int
    helo: str
    sender: str
    address: str
    imap: ImapProbeTarget
    deadline: float
    poll_interval: float = 2.0


def _message(target: CanaryTarget, token: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = target.sender
    message["To"] = target.address
    message["Subject"] = f"continuity canary {token}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=target.helo)
    message.set_content("A probe of the mail flow, sent and deleted by the continuity appliance.\n")
    return message


async def _find_and_delete(imap: ImapProbeTarget, token: str) -> bool:
    client = aioimaplib.IMAP4_SSL(host=imap.host, port=imap.port, timeout=imap.timeout, ssl_context=imap.tls)
    try:
        await client.wait_hello_from_server()
        if (await client.login(imap.user, imap.password)).result != "OK":
            raise ConnectionError(f"IMAP login of {imap.user} refused")
        await client.select("INBOX")
        found = await client.search(f'SUBJECT "{token}"')
        numbers = found.lines[0].decode().split() if found.result == "OK" and found.lines else []
        if numbers:
            await client.store(",".join(numbers), "+FLAGS", r"(\Deleted)")
            await client.expunge()
        await client.logout()
        return bool(numbers)
    finally:
        if client.protocol is not None and client.protocol.transport is not None:
            client.protocol.transport.close()


async def probe_canary(target: CanaryTarget, tls: ssl.SSLContext) -> ProbeResult:
    """Send the canary and wait for it; never raises."""
    started = time.monotonic()
    at = time.time()
    token = secrets.token_hex(8)

    def result(outcome: ProbeOutcome, detail: str) -> ProbeResult:
        return ProbeResult("canary", ProbeKind.CANARY, outcome, time.monotonic() - started, detail, at)

    try:
        await aiosmtplib.send(
            _message(target, token),
            hostname=target.smtp_host,
            port=target.smtp_port,
            local_hostname=target.helo,
            start_tls=None,
            tls_context=tls,
            timeout=target.imap.timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        return result(ProbeOutcome.DOWN, f"sending the canary failed: {exc}")
    deadline = started + target.deadline
    last = ""
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(target.imap.timeout):
                if await _find_and_delete(target.imap, token):
                    return result(ProbeOutcome.UP, f"round trip in {time.monotonic() - started:.1f}s")
        except (TimeoutError, OSError, ssl.SSLError, aioimaplib.Abort, aioimaplib.Error) as exc:
            last = f" (last IMAP error: {type(exc).__name__}: {exc})"
        await asyncio.sleep(target.poll_interval)
    return result(ProbeOutcome.DOWN, f"the canary did not arrive within {target.deadline:g}s{last}")
