"""The relay listener: the primary's outbound smart host (aiosmtpd, on the application's event loop).

Never an open relay: a client may relay only from ``[feeds] relay_networks`` (the
primary's addresses) or after SMTP AUTH with the configured user and password (offered
only over TLS unless told otherwise). Everyone else is refused at MAIL and at RCPT. The
MX listener stays strictly inbound; this listener is a separate socket with its own
handler. Mail to ``[feeds] journal_address`` is a journal report and is unwrapped instead
of relayed; it must come in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import ssl
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword, _AuthMechAttr

from continuity.adapters import smtp_replies
from continuity.adapters.smtp_server import SmtpListener
from continuity.adapters.smtp_session import ContinuitySMTP, SessionEnvelope
from continuity.config.smtp import SmtpSettings
from continuity.core.addresses import normalize_address, normalize_domain
from continuity.core.auth_failures import AuthFailureLimiter
from continuity.core.client_limits import ClientLimiter
from continuity.core.content_checks import ContentLimits
from continuity.core.models import AcceptedRecipient
from continuity.core.recipients import RecipientVerdict
from continuity.services.ingest import Accepted, Filtered, Refused, TransactionInfo
from continuity.services.journal_feed import JournalDropped, JournalFeed, JournalRefused
from continuity.services.relay_feed import RelayFeed

log = logging.getLogger("continuity.relay")

NOT_ALLOWED = "554 5.7.1 Relaying is not allowed from your address"
AUTH_REQUIRED = "530 5.7.0 Authentication required to relay"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
AUTH_LOCKED = "454 4.7.0 Too many failed authentication attempts from your address; try again later"
JOURNAL_ALONE = "452 4.5.3 A journal report must be sent in a transaction of its own"


def relay_address(raw: str) -> str | None:
    """The recipient as it is relayed: the local part as given, the domain normalised; None when malformed."""
    text = raw.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    try:
        normalize_address(text)
        local, _sep, domain = text.rpartition("@")
        return f"{local}@{normalize_domain(domain)}"
    except ValueError:
        return None


class RelayAuthenticator:
    """aiosmtpd authenticator: the one configured user and password, compared in constant time.

    Failures are counted per client address across sessions (``failures``); an address that
    has used up its failures is answered 454 without its credentials being checked.
    """

    def __init__(self, username: str, password: str, failures: AuthFailureLimiter) -> None:
        self._username = username.encode()
        self._password = password.encode()
        self._failures = failures

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        client = str(getattr(server, "client_ip", "?"))
        if self._failures.blocked(client):
            log.warning(
                "relay AUTH %s from client=[%s] refused unchecked: too many failures (again in %.0fs)",
                mechanism,
                client,
                self._failures.retry_after(client),
            )
            return AuthResult(success=False, handled=False, message=AUTH_LOCKED)
        user_ok = hmac.compare_digest(auth_data.login, self._username)
        password_ok = hmac.compare_digest(auth_data.password, self._password)
        if user_ok and password_ok:
            return AuthResult(success=True, auth_data=auth_data.login.decode(errors="replace"))
        count = self._failures.failed(client)
        log.warning("relay AUTH %s failed from client=[%s] (%d recent failure(s))", mechanism, client, count)
        return AuthResult(success=False, handled=False, message=AUTH_FAILED)


class RelayHandler:
    """aiosmtpd hooks of the relay listener."""

    def __init__(
        self,
        relay: RelayFeed,
        journal: JournalFeed | None,
        journal_address: str,
        networks: list[str],
        limiter: ClientLimiter,
        max_recipients: int,
        content_limits: ContentLimits,
        auth_offered: bool,
    ) -> None:
        self._relay = relay
        self._journal = journal
        self._journal_address = journal_address
        self._networks = [ipaddress.ip_network(network) for network in networks]
        self._limiter = limiter
        self._max_recipients = max_recipients
        self._content_limits = content_limits
        self._auth_offered = auth_offered

    def allowed(self, client_ip: str, session: Any) -> bool:
        """True for a client in the relay networks or one that authenticated."""
        if getattr(session, "authenticated", False):
            return True
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def _refusal(self) -> str:
        return AUTH_REQUIRED if self._auth_offered else NOT_ALLOWED

    async def handle_EHLO(  # noqa: N802 - aiosmtpd hook name
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [line[4:] for line in responses if line[4:] != "HELP"]
        lines.append("PIPELINING")
        return ["\r\n".join([f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"])]

    async def handle_MAIL(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, address: str, options: list[str]
    ) -> str:
        if not self.allowed(server.client_ip, session):
            shown = "" if address == "<>" else address
            log.warning("relay refused: client=[%s] from=<%s> is not allowed to relay", server.client_ip, shown)
            return self._refusal()
        if not self._limiter.allow_message(server.client_ip):
            return smtp_replies.RATE_LIMITED
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return smtp_replies.OK_SENDER

    async def handle_RCPT(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope, address: str, options: list[str]
    ) -> str:
        if not self.allowed(server.client_ip, session):
            return self._refusal()
        if len(envelope.accepted) >= self._max_recipients:
            return smtp_replies.TOO_MANY_RECIPIENTS
        recipient = relay_address(address)
        if recipient is None:
            return smtp_replies.recipient_refused(RecipientVerdict.MALFORMED, "")
        journal = bool(self._journal_address) and recipient.lower() == self._journal_address
        if envelope.accepted and (journal or self._is_journal(envelope)):
            return JOURNAL_ALONE
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.accepted.append(AcceptedRecipient(recipient, ""))
        return smtp_replies.OK_RECIPIENT

    def _is_journal(self, envelope: SessionEnvelope) -> bool:
        return bool(self._journal_address) and any(
            accepted.address.lower() == self._journal_address for accepted in envelope.accepted
        )

    async def handle_DATA(  # noqa: N802
        self, server: ContinuitySMTP, session: Any, envelope: SessionEnvelope
    ) -> str:
        sender = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        # RFC 3848: ESMTP, plus S with TLS and A after AUTH.
        protocol = "ESMTP" + ("S" if session.ssl is not None else "") + ("A" if session.authenticated else "")
        transaction = TransactionInfo(
            client_address=server.client_ip,
            client_helo=str(session.host_name or ""),
            protocol=protocol if session.extended_smtp else "SMTP",
            sender=sender,
            recipients=tuple(envelope.accepted),
        )
        assert envelope.original_content is not None
        if self._journal is not None and self._is_journal(envelope):
            journal = await self._journal.ingest_report(transaction, envelope.original_content)
            if isinstance(journal, JournalRefused):
                return (
                    "550 5.6.0 Not a usable journal report: "
                    + " ".join("".join(c if c.isascii() and c.isprintable() else "?" for c in journal.reason).split())[
                        :200
                    ]
                )
            if isinstance(journal, JournalDropped):
                return "250 2.0.0 Ok: journal report taken (the journaled message is refused by security policy)"
            outcome = journal
        else:
            outcome = await self._relay.ingest(transaction, envelope.original_content)
        if isinstance(outcome, Accepted):
            return smtp_replies.queued(outcome.queue_id)
        if isinstance(outcome, Refused):
            return smtp_replies.content_refused(outcome.problem, self._content_limits)
        if isinstance(outcome, Filtered):
            return smtp_replies.filtered(outcome.verdict, outcome.result.public_reason)
        return smtp_replies.STORAGE_FAILURE


class RelaySMTP(ContinuitySMTP):
    """A session of the relay listener: the appliance's SMTP protocol plus AUTH PLAIN and LOGIN."""

    def __init__(
        self, *args: Any, authenticator: RelayAuthenticator | None, auth_require_tls: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if authenticator is not None:
            self._authenticator = authenticator
            self._auth_callback = None
            self._auth_methods = {
                "PLAIN": _AuthMechAttr(self.auth_PLAIN, True),
                "LOGIN": _AuthMechAttr(self.auth_LOGIN, True),
            }
            self._auth_require_tls = auth_require_tls


class RelayListener(SmtpListener):
    """The relay listener's socket and sessions."""

    def __init__(
        self,
        settings: SmtpSettings,
        handler: RelayHandler,
        limiter: ClientLimiter,
        content_limits: ContentLimits,
        tls_context: ssl.SSLContext | None,
        authenticator: RelayAuthenticator | None,
        auth_require_tls: bool,
    ) -> None:
        super().__init__(settings, None, limiter, content_limits, tls_context, handler)  # type: ignore[arg-type]
        self._authenticator = authenticator
        self._auth_require_tls = auth_require_tls

    def _new_session(self) -> ContinuitySMTP:
        return RelaySMTP(
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
            authenticator=self._authenticator,
            auth_require_tls=self._auth_require_tls,
        )
