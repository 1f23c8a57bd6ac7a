"""The inbound SMTP listener: aiosmtpd on the application's own event loop.

The handler translates SMTP commands into calls on the ingest service and its typed
outcomes back into replies (see smtp_replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from continuity.adapters import smtp_replies
from continuity.adapters.smtp_session import ContinuitySMTP, SessionEnvelope, SessionRegistry, handler_hooks
from continuity.config.smtp import SmtpSettings
from continuity.core.client_limits import ClientLimiter
from continuity.core.content_checks import ContentLimits
from continuity.core.models import AcceptedRecipient
from continuity.core.recipients import RecipientVerdict
from continuity.services.ingest import Accepted, Filtered, IngestService, Refused, TransactionInfo

log = logging.getLogger("continuity.smtp")


class IngestHandler:
    """aiosmtpd handler hooks backed by the ingest service."""

    def __init__(
        self, ingest: IngestService, limiter: ClientLimiter, max_recipients: int, content_limits: ContentLimits
    ) -> None:
        self._ingest = ingest
        self._limiter = limiter
        self._max_recipients = max_recipients
        self._content_limits = content_limits

    async def handle_EHLO(  # noqa: N802 - aiosmtpd hook name
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # Advertise PIPELINING (aiosmtpd handles pipelined commands); drop HELP and AUTH
        # (an MX accepts mail for its domains without authentication).
        lines = [line[4:] for line in responses if line[4:] != "HELP" and not line[4:].startswith("AUTH")]
        lines.append("PIPELINING")
        # One reply string for all lines: aiosmtpd writes each element with its own
        # send(); joined, the whole EHLO reply leaves in one segment.
        return ["\r\n".join([f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"])]

    async def handle_MAIL(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, address: str, options: list[str]
    ) -> str:
        if not self._limiter.allow_message(server.client_ip):
            log.warning("rate limit: client=[%s] over its message rate", server.client_ip)
            return smtp_replies.RATE_LIMITED
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return smtp_replies.OK_SENDER

    async def handle_RCPT(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.accepted) >= self._max_recipients:
            return smtp_replies.TOO_MANY_RECIPIENTS
        decision = self._ingest.decide_recipient(address)
        if decision.verdict is not RecipientVerdict.ACCEPT:
            log.info(
                "refused recipient <%s> from=<%s> client=[%s]: %s",
                address,
                envelope.mail_from,
                server.client_ip,
                decision.verdict.value,
            )
            return smtp_replies.recipient_refused(decision.verdict, decision.address or address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.accepted.append(AcceptedRecipient(decision.address, decision.mailbox))
        return smtp_replies.OK_RECIPIENT

    async def handle_DATA(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope
    ) -> str:
        sender = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        protocol = ("ESMTPS" if session.ssl is not None else "ESMTP") if session.extended_smtp else "SMTP"
        transaction = TransactionInfo(
            client_address=server.client_ip,
            client_helo=str(session.host_name or ""),
            protocol=protocol,
            sender=sender,
            recipients=tuple(envelope.accepted),
        )
        assert envelope.original_content is not None
        outcome = await self._ingest.ingest(transaction, envelope.original_content)
        if isinstance(outcome, Accepted):
            return smtp_replies.queued(outcome.queue_id)
        if isinstance(outcome, Refused):
            return smtp_replies.content_refused(outcome.problem, self._content_limits)
        if isinstance(outcome, Filtered):
            return smtp_replies.filtered(outcome.verdict, outcome.result.public_reason)
        return smtp_replies.STORAGE_FAILURE


class SmtpListener:
    """Owns the listening socket and the live sessions."""

    def __init__(
        self,
        settings: SmtpSettings,
        ingest: IngestService,
        limiter: ClientLimiter,
        content_limits: ContentLimits,
        tls_context: ssl.SSLContext | None,
        handler: Any | None = None,
    ) -> None:
        self._settings = settings
        # Another listener (the relay feed's) brings its own handler hooks.
        self._handler = handler or IngestHandler(ingest, limiter, settings.max_recipients, content_limits)
        self._hooks = handler_hooks(self._handler)
        self._limiter = limiter
        self._tls_context = tls_context
        self._registry = SessionRegistry()
        self._server: asyncio.Server | None = None

    def _new_session(self) -> ContinuitySMTP:
        return ContinuitySMTP(
            self._handler,
            hooks=self._hooks,
            limiter=self._limiter,
            registry=self._registry,
            max_errors=self._settings.max_errors,
            max_line_length=self._settings.max_line_length,
            data_size_limit=self._settings.max_message_size,
            hostname=self._settings.hostname,
            tls_context=self._tls_context,
            timeout=self._settings.session_timeout,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> tuple[str, int]:
        """Start listening; returns the bound address (useful with port 0)."""
        address = self._settings.listen_address
        self._server = await asyncio.get_running_loop().create_server(
            self._new_session, address.host, address.port, reuse_address=True, backlog=512
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    @property
    def active_sessions(self) -> int:
        """Number of open sessions."""
        return len(self._registry.sessions)

    async def stop(self, grace: float) -> None:
        """Stop accepting, let transactions in flight finish for up to grace seconds, close the rest."""
        if self._server is not None:
            self._server.close()
        self._registry.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._registry.all_closed.wait(), grace)
        for session in list(self._registry.sessions):
            log.warning("closing session of client=[%s] still open after %.0fs", session.client_ip, grace)
            if session.transport is not None:
                session.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
