"""The IMAP probe of the primary (aioimaplib): TLS greeting, login of the canary account, SELECT INBOX.

The canary logs in with its password, or, when the target carries an ImapLogin, as the
replay does ([replay] auth: SASL PLAIN with an authzid, an Entra app's token).

Its replies pass continuity.adapters.imap_guard (bounded lines, literals and line counts).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import aioimaplib

from continuity.adapters.imap_auth import ImapLogin, LoginRefusedError, log_in
from continuity.adapters.imap_guard import ReplyLimits, guard_client
from continuity.core.imap_syntax import ImapSyntaxError
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult
from continuity.errors import PrimaryReplyError


@dataclass(frozen=True, slots=True)
class ImapProbeTarget:
    """Where and as whom to probe."""

    host: str
    port: int
    user: str
    password: str
    tls: ssl.SSLContext
    timeout: float
    # Set when the canary's mailbox is opened as the replay logs in ([replay] auth, e.g. an
    # Entra app's token in Exchange Online, where the canary's password cannot log in).
    login: ImapLogin | None = None


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
            guard = guard_client(client, f"{target.host}:{target.port}", ReplyLimits())
            try:
                await guard.run("greeting", client.wait_hello_from_server(), target.timeout)
                if target.login is not None:
                    server = f"{target.host}:{target.port}"
                    await log_in(
                        client,
                        guard,
                        target.login,
                        target.user,
                        server=server,
                        host=target.host,
                        port=target.port,
                        deadline=target.timeout,
                    )
                else:
                    login = await guard.run("LOGIN", client.login(target.user, target.password), target.timeout)
                    if login.result != "OK":
                        return result(ProbeOutcome.DOWN, f"login of {target.user} refused: {_text(login.lines)}")
                select = await guard.run("SELECT", client.select("INBOX"), target.timeout)
                if select.result != "OK":
                    return result(ProbeOutcome.DOWN, f"SELECT INBOX failed: {_text(select.lines)}")
                await guard.run("LOGOUT", client.logout(), target.timeout)
            finally:
                if client.protocol is not None and client.protocol.transport is not None:
                    client.protocol.transport.close()
    except (PrimaryReplyError, LoginRefusedError, ImapSyntaxError) as exc:
        return result(ProbeOutcome.DOWN, str(exc))
    except (TimeoutError, OSError, ssl.SSLError, aioimaplib.Abort, aioimaplib.Error, ValueError, IndexError) as exc:
        return result(ProbeOutcome.DOWN, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return result(ProbeOutcome.UP, f"TLS greeting, login of {target.user}, SELECT INBOX")


def _text(lines: list[bytes | bytearray | str]) -> str:
    return " ".join(line.decode(errors="replace") if isinstance(line, bytes | bytearray) else line for line in lines)
