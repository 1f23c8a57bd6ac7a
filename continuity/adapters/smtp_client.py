"""Outbound SMTP delivery with aiosmtplib: via the smart host, or directly to each domain's MX.

One call delivers one message to many recipients and reports per recipient: delivered,
deferred (retry later) or failed (permanent). Hosts are tried in MX order and address by
address until one answers; TLS follows ``[outbound] tls`` (opportunistic by default, as
RFC 7435 describes for MX delivery, falling back to plaintext only when the handshake
itself fails). Callers own queueing and retries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import defaultdict
from collections.abc import Sequence

import aiosmtplib

from continuity.adapters.mx_resolver import MailHost, MxLookupError, MxResolver
from continuity.adapters.smtp_kept_session import SmtpSession
from continuity.adapters.smtp_transaction import send_message
from continuity.config.outbound import OutboundSettings, TlsPolicy
from continuity.core.delivery import DeliveryReport, DeliveryStatus, RecipientResult, status_for_code

log = logging.getLogger("continuity.outbound")


class _HostUnusableError(Exception):
    """This host could not take the message; try the next one."""


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class SmtpDelivery:
    """Delivers messages according to the outbound settings."""

    def __init__(self, settings: OutboundSettings, helo_name: str, resolver: MxResolver | None = None) -> None:
        self._settings = settings
        self._helo = settings.helo_name or helo_name
        self._resolver = resolver or MxResolver(settings.resolver_addresses, timeout=settings.timeout)

    def session(self, host: str, port: int) -> SmtpSession:
        """A kept connection to host:port for many messages (opened on first use)."""
        return SmtpSession(self._settings, self._helo, host, port)

    async def deliver(self, sender: str, recipients: Sequence[str], message: bytes) -> DeliveryReport:
        """Try once to deliver message to every recipient; never raises for delivery problems."""
        smart_host = self._settings.smart_host_address
        if smart_host is not None:
            hosts = [MailHost(smart_host.host, (smart_host.host,))]
            results = await self._deliver_to_hosts(hosts, smart_host.port, sender, list(recipients), message)
            return DeliveryReport(tuple(results))
        by_domain: dict[str, list[str]] = defaultdict(list)
        for recipient in recipients:
            by_domain[_domain(recipient)].append(recipient)
        groups = await asyncio.gather(
            *(self._deliver_to_domain(domain, group, sender, message) for domain, group in by_domain.items())
        )
        return DeliveryReport(tuple(result for group in groups for result in group))

    async def _deliver_to_domain(
        self, domain: str, recipients: list[str], sender: str, message: bytes
    ) -> list[RecipientResult]:
        try:
            hosts = await self._resolver.mail_hosts(domain)
        except MxLookupError as exc:
            status = DeliveryStatus.FAILED if exc.permanent else DeliveryStatus.DEFERRED
            return [RecipientResult(recipient, status, 0, str(exc)) for recipient in recipients]
        return await self._deliver_to_hosts(hosts, self._settings.mx_port, sender, recipients, message)

    async def _deliver_to_hosts(
        self, hosts: list[MailHost], port: int, sender: str, recipients: list[str], message: bytes
    ) -> list[RecipientResult]:
        last_problem = "no host to try"
        last_host = ""
        for host in hosts:
            for address in host.addresses:
                last_host = f"{host.name}[{address}]:{port}"
                try:
                    return await self._session(host.name, address, port, sender, recipients, message)
                except _HostUnusableError as exc:
                    last_problem = str(exc)
                    log.info("delivery via %s not possible, trying the next host: %s", last_host, exc)
        return [RecipientResult(r, DeliveryStatus.DEFERRED, 0, last_problem, last_host) for r in recipients]

    def _tls_options(self, use_tls: bool) -> dict[str, object]:
        policy = self._settings.tls
        if policy is TlsPolicy.NONE or not use_tls:
            return {"start_tls": False}
        if policy is TlsPolicy.OPPORTUNISTIC:
            return {"start_tls": None, "validate_certs": False}
        context = ssl.create_default_context(cafile=str(self._settings.ca_file) if self._settings.ca_file else None)
        return {"start_tls": True, "validate_certs": True, "tls_context": context}

    async def _connect(self, address: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (address, port)), self._settings.timeout
            )
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise _HostUnusableError(f"cannot connect to {address}:{port}: {exc or 'timed out'}") from None
        return sock

    async def _session(
        self, name: str, address: str, port: int, sender: str, recipients: list[str], message: bytes
    ) -> list[RecipientResult]:
        try:
            return await self._attempt(name, address, port, sender, recipients, message, use_tls=True)
        except ssl.SSLError as exc:
            if self._settings.tls is not TlsPolicy.OPPORTUNISTIC:
                raise _HostUnusableError(f"TLS with {name} failed: {exc}") from None
            log.warning("TLS handshake with %s[%s] failed (%s); retrying without TLS", name, address, exc)
            return await self._attempt(name, address, port, sender, recipients, message, use_tls=False)

    async def _attempt(
        self, name: str, address: str, port: int, sender: str, recipients: list[str], message: bytes, *, use_tls: bool
    ) -> list[RecipientResult]:
        host = f"{name}[{address}]:{port}"
        sock = await self._connect(address, port)
        client = aiosmtplib.SMTP(
            hostname=name,
            sock=sock,
            local_hostname=self._helo,
            timeout=self._settings.timeout,
            **self._tls_options(use_tls),  # type: ignore[arg-type]
        )
        try:
            await client.connect()
            if self._settings.username and self._settings.password is not None:
                await client.login(self._settings.username, self._settings.password.get_secret_value())
            refused = await send_message(client, sender, recipients, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return [_result(error.recipient, error.code, error.message, host) for error in exc.recipients]
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError, aiosmtplib.SMTPAuthenticationError) as exc:
            if 400 <= exc.code < 500:
                raise _HostUnusableError(f"{host} answered {exc.code} {exc.message}") from None
            return [_result(recipient, exc.code, exc.message, host) for recipient in recipients]
        except aiosmtplib.SMTPConnectResponseError as exc:
            raise _HostUnusableError(f"{host} greeted with {exc.code} {exc.message}") from None
        except ssl.SSLError:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if isinstance(exc.__cause__, ssl.SSLError):
                raise exc.__cause__ from None
            raise _HostUnusableError(f"{host}: {exc}") from None
        finally:
            client.close()
        results = []
        for recipient in recipients:
            answer = refused.get(recipient)
            if answer is None:
                results.append(RecipientResult(recipient, DeliveryStatus.DELIVERED, 250, "accepted", host))
            else:
                results.append(_result(recipient, answer.code, answer.message, host))
        return results


def _result(recipient: str, code: int, text: str, host: str) -> RecipientResult:
    return RecipientResult(recipient, status_for_code(code), code, text, host)
