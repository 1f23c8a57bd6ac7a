"""One SMTP connection to one host, kept open for many messages: the replay into the primary's receive connector.

Opened lazily and reopened after a failure; TLS follows the delivery's policy, and with
``opportunistic`` a failed TLS handshake is retried once without TLS for this session's
life. Transactions are pipelined when the server offers it (smtp_pipelined.py). A
transaction the server refuses is reset and the connection reused; a broken connection
defers the message's recipients and is reopened for the next one. ``send`` never raises
for delivery problems: every recipient gets a result with the server's reply or the
reason.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

from continuity.adapters.smtp_pipelined import PipelinedSmtp, SmtpConnectionError, SmtpReplyError
from continuity.config.outbound import OutboundSettings, TlsPolicy
from continuity.core.delivery import DeliveryStatus, RecipientResult, status_for_code

log = logging.getLogger("continuity.outbound")


class SmtpSession:
    """A kept connection to host:port; see the module docstring."""

    def __init__(self, settings: OutboundSettings, helo: str, host: str, port: int) -> None:
        self._settings = settings
        self._helo = helo
        self._host = host
        self._port = port
        self._connection: PipelinedSmtp | None = None
        self._plaintext = False

    @property
    def target(self) -> str:
        """host:port, for messages."""
        return f"{self._host}:{self._port}"

    async def _open(self) -> PipelinedSmtp:
        policy = TlsPolicy.NONE if self._plaintext else self._settings.tls
        try:
            return await PipelinedSmtp.open(
                self._host, self._port, helo=self._helo, step_seconds=self._settings.timeout, tls=policy,
                ca_file=self._settings.ca_file,
            )  # fmt: skip
        except ssl.SSLError as exc:
            if policy is not TlsPolicy.OPPORTUNISTIC:
                raise SmtpConnectionError(f"TLS with {self.target} failed: {exc}") from None
            log.warning("TLS handshake with %s failed (%s); continuing without TLS", self.target, exc)
            self._plaintext = True
            return await self._open()

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> list[RecipientResult]:
        """Deliver one message over the kept connection; never raises for delivery problems."""
        host = self.target
        try:
            if self._connection is None or not self._connection.is_open:
                self._connection = await self._open()
            answers = await self._connection.send(sender, recipients, message)
        except SmtpReplyError as exc:
            # A greeting such as "421 too busy" or a refused EHLO: the caller wants its code.
            await self.close()
            return [
                RecipientResult(r, status_for_code(exc.reply.code), exc.reply.code, exc.reply.text, host)
                for r in recipients
            ]
        except SmtpConnectionError as exc:
            await self.close()
            return [RecipientResult(r, DeliveryStatus.DEFERRED, 0, f"{host}: {exc}", host) for r in recipients]
        results = []
        for recipient in recipients:
            reply = answers[recipient]
            if reply.code == 250:
                results.append(RecipientResult(recipient, DeliveryStatus.DELIVERED, 250, "accepted", host))
            else:
                results.append(RecipientResult(recipient, status_for_code(reply.code), reply.code, reply.text, host))
        return results

    async def close(self) -> None:
        """QUIT (best effort) and close."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.quit()
