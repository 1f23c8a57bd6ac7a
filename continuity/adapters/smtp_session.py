"""One inbound SMTP session: aiosmtpd's protocol with the appliance's limits added.

aiosmtpd (>= 1.4.6) parses the protocol; this subclass adds what an Internet-facing MX
needs and aiosmtpd lacks: per-IP session limits, a hard error limit per session, a
graceful drain on shutdown, a version-free banner, a faster address parser for the
common ``<user@domain>`` form, and a typed envelope.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from continuity.adapters import smtp_replies
from continuity.core.client_limits import ClientLimiter
from continuity.core.models import AcceptedRecipient

# The plain "<local@domain> [params]" form of MAIL/RCPT arguments: no quotes, no
# source routes, no comments. Anything else goes to aiosmtpd's full RFC 5322 parser.
_SIMPLE_PATH = re.compile(r"<([^<>()\[\]\\\",;:@\s]+@[A-Za-z0-9.-]+)>(?:\s+(.*))?\Z")
_NULL_PATH = re.compile(r"<>(?:\s+(.*))?\Z")


class SessionEnvelope(Envelope):  # type: ignore[misc]
    """aiosmtpd's envelope plus the recipients as the directory resolved them."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[AcceptedRecipient] = []


class SessionRegistry:
    """The live sessions of one listener, so shutdown can drain them."""

    def __init__(self) -> None:
        self.sessions: set[ContinuitySMTP] = set()
        self.draining = False

    def drain(self) -> None:
        """Close idle sessions now; the others close when their transaction ends."""
        self.draining = True
        for session in list(self.sessions):
            session.close_if_idle()


class ContinuitySMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's SMTP protocol with per-IP limits, an error limit and graceful drain."""

    def __init__(
        self,
        handler: Any,
        *,
        limiter: ClientLimiter,
        registry: SessionRegistry,
        max_errors: int,
        max_line_length: int,
        **kwargs: Any,
    ) -> None:
        # aiosmtpd sizes its stream reader from line_length_limit, so set it first.
        self.line_length_limit = max_line_length + 2
        super().__init__(handler, ident="ESMTP", **kwargs)
        self._limiter = limiter
        self._registry = registry
        self._max_errors = max_errors
        self._errors = 0
        self._client_ip: str | None = None
        self._closing = False

    @property
    def client_ip(self) -> str:
        """The client's IP address."""
        return self._client_ip or "unknown"

    def _create_envelope(self) -> SessionEnvelope:
        return SessionEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            self._client_ip = str(peer[0]) if peer else "unknown"
            self._registry.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        if self in self._registry.sessions:
            self._registry.sessions.discard(self)
            if self._client_ip is not None and self._counted:
                self._limiter.close_session(self._client_ip)
                self._counted = False
        super().connection_lost(error)

    _counted = False

    async def _handle_client(self) -> None:
        if self._registry.draining:
            await self._send_and_close(smtp_replies.SHUTTING_DOWN)
            return
        if not self._limiter.open_session(self.client_ip):
            await self._send_and_close(smtp_replies.TOO_MANY_SESSIONS)
            return
        self._counted = True
        await super()._handle_client()

    async def _send_and_close(self, reply: str) -> None:
        self._closing = True
        if self.transport is None:
            return
        self._writer.write(reply.encode("ascii") + b"\r\n")
        try:
            await self._writer.drain()
        except ConnectionError:
            pass
        if self.transport is not None:
            self.transport.close()

    @property
    def in_transaction(self) -> bool:
        """True between MAIL FROM and the end of the transaction (DATA reply or RSET)."""
        return bool(self.envelope is not None and self.envelope.mail_from)

    def close_if_idle(self) -> None:
        """Send 421 and close unless a transaction is in progress (then close after it)."""
        if not self.in_transaction and not self._closing and self.transport is not None:
            asyncio.get_running_loop().create_task(self._send_and_close(smtp_replies.SHUTTING_DOWN))

    async def push(self, status: str | bytes) -> None:
        await super().push(status)
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        if self._closing or text[3:4] == "-":
            return  # already closing, or not the last line of a multi-line reply
        if text[:1] in ("4", "5"):
            self._errors += 1
            if self._errors >= self._max_errors:
                await self._send_and_close(smtp_replies.TOO_MANY_ERRORS)
                return
        if self._registry.draining and not self.in_transaction and not text.startswith("221"):
            # Shutting down: the transaction (if any) has ended, so close politely now.
            await self._send_and_close(smtp_replies.SHUTTING_DOWN)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.match(arg)
        if match is not None:
            return match.group(1), match.group(2) or ""
        match = _NULL_PATH.match(arg)
        if match is not None:
            return "<>", match.group(1) or ""
        result: tuple[str | None, str | None] = super()._getaddr(arg)
        return result
