"""The outbound queue: mail users send from the webmail, durable, filtered, retried, DKIM-signed.

``submit`` makes the message durable (body in the blob store, queue rows committed)
before it returns, so "sent" means it survives a crash. A worker task delivers due
messages with the SMTP client (smart host or MX), records each recipient's outcome,
retries deferred recipients on a growing schedule and, when a recipient fails for
good, files a non-delivery notice in the sender's Inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol

from continuity.adapters.dkim_signer import DkimSigner
from continuity.core.addresses import domain_of
from continuity.core.delivery import DeliveryReport, DeliveryStatus, RecipientResult
from continuity.core.mail_folders import StandardFolder
from continuity.errors import ContinuityError
from continuity.store.protocol import BlobRepository
from continuity.store.sqlite_outbound import OutboundMessage
from continuity.store.sqlite_webmail import LocalMessage
from continuity.store.webmail_protocol import OutboundRepository, WebmailRepository

log = logging.getLogger("continuity.outbound")

# Seconds before attempt 2, 3, ...; the last value repeats (Postfix-like backoff).
RETRY_DELAYS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400)
# How long a deferred recipient is retried before it fails (Postfix maximal_queue_lifetime).
MAX_AGE = 5 * 86400.0
# Messages attempted at the same time.
_PARALLEL = 20


class Deliverer(Protocol):
    """What delivers one message (continuity.adapters.smtp_client.SmtpDelivery)."""

    async def deliver(self, sender: str, recipients: Sequence[str], message: bytes) -> DeliveryReport: ...


@dataclass(frozen=True, slots=True)
class OutboundRefused:
    """The filter pipeline refused the message; reason is a sentence for the user."""

    reason: str


class OutboundFilter(Protocol):
    """The security filter applied to outbound mail before it is queued."""

    async def check(
        self, mailbox: str, sender: str, recipients: Sequence[str], content: bytes
    ) -> OutboundRefused | None:
        """None to let the message go, or why it may not."""
        ...


class OutboundService:
    """Queues and delivers outbound mail."""

    def __init__(
        self,
        *,
        outbound: OutboundRepository,
        webmail: WebmailRepository,
        blobs: BlobRepository,
        deliverer: Deliverer,
        signer: DkimSigner,
        hostname: str,
        message_filter: OutboundFilter | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_age: float = MAX_AGE,
    ) -> None:
        self._outbound = outbound
        self._webmail = webmail
        self._blobs = blobs
        self._deliverer = deliverer
        self._signer = signer
        self._hostname = hostname
        self._filter = message_filter
        self._delays = tuple(retry_delays)
        self._max_age = max_age
        self._wake = asyncio.Event()
        self._troubled = False

    async def submit(
        self, mailbox: str, sender: str, recipients: Sequence[str], content: bytes, subject: str
    ) -> int | OutboundRefused:
        """Filter, sign and durably queue a message; returns its outbound id or why it was refused."""
        if self._filter is not None:
            refused = await self._filter.check(mailbox, sender, recipients, content)
            if refused is not None:
                log.info("outbound from <%s> refused by the filter: %s", sender, refused.reason)
                return refused
        signed = await asyncio.to_thread(self._signer.sign, content, domain_of(sender))
        sha256 = hashlib.sha256(signed).hexdigest()
        await self._blobs.put(sha256, signed)
        outbound_id = await self._outbound.enqueue(mailbox, sender, recipients, sha256, len(signed), subject)
        log.info(
            "outbound %d queued from=<%s> to=%d recipients size=%d", outbound_id, sender, len(recipients), len(signed)
        )
        self._wake.set()
        return outbound_id

    def _next_delay(self, attempts: int) -> float:
        return self._delays[min(attempts, len(self._delays) - 1)]

    async def attempt(self, message: OutboundMessage) -> None:
        """One delivery attempt for the waiting recipients of message."""
        waiting = message.waiting
        if not waiting:
            return
        try:
            content = await self._blobs.read(message.sha256)
        except ContinuityError as exc:
            log.error("outbound %d: body unreadable, deferring: %s", message.id, exc)
            report = DeliveryReport(tuple(RecipientResult(r, DeliveryStatus.DEFERRED, 0, str(exc)) for r in waiting))
        else:
            report = await self._deliverer.deliver(message.sender, waiting, content)
        now = time.time()
        give_up = now - message.created_at >= self._max_age
        await self._outbound.record_attempt(
            message.id, report.results, now + self._next_delay(message.attempts), give_up
        )
        for result in report.results:
            log.info(
                "outbound %d to=<%s> %s: %d %s %s",
                message.id,
                result.recipient,
                result.status.value,
                result.code,
                result.text,
                result.host,
            )
        failed = [
            r
            for r in report.results
            if r.status is DeliveryStatus.FAILED or (give_up and r.status is DeliveryStatus.DEFERRED)
        ]
        if failed:
            await self._notify_failure(message, failed)

    async def _notify_failure(self, message: OutboundMessage, failed: list[RecipientResult]) -> None:
        notice = EmailMessage()
        notice["From"] = email.utils.formataddr(("Mail Delivery System", f"mailer-daemon@{self._hostname}"))
        notice["To"] = message.sender
        notice["Subject"] = f"Undelivered: {message.subject}"
        notice["Date"] = email.utils.formatdate(localtime=False)
        notice["Message-ID"] = email.utils.make_msgid(domain=self._hostname)
        lines = [f'Your message "{message.subject}" could not be delivered to:', ""]
        lines += [f"  {r.recipient}: {r.code or ''} {r.text}".rstrip() for r in failed]
        notice.set_content("\n".join(lines) + "\n")
        await self._webmail.add_local(
            LocalMessage(
                mailbox=message.mailbox,
                folder=StandardFolder.INBOX.value,
                flags="",
                sender=f"mailer-daemon@{self._hostname}",
                subject=str(notice["Subject"]),
                message_id=str(notice["Message-ID"]),
                content=notice.as_bytes(policy=SMTP),
            )
        )

    async def run_due(self) -> int:
        """Attempt every due message once; returns how many."""
        due = await self._outbound.due(time.time(), limit=_PARALLEL)
        # Attempts run side by side, so one slow or silent MX does not hold up the others.
        outcomes = await asyncio.gather(*(self.attempt(message) for message in due), return_exceptions=True)
        self._troubled = False
        for message, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._troubled = True
                log.error("outbound %d: attempt failed: %s", message.id, outcome)
        return len(due)

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                # Go on while messages are due, but let a failing store breathe between rounds.
                while await self.run_due() and not self._troubled:
                    pass
                next_due = await self._outbound.next_due()
            except ContinuityError as exc:
                log.error("outbound queue run failed, retrying: %s", exc)
                next_due = time.time() + 30
            self._wake.clear()
            floor = 5.0 if self._troubled else 0.05
            timeout = 60.0 if next_due is None else min(60.0, max(floor, next_due - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
