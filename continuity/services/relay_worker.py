"""Relays the primary's outbound mail to the Internet (or the configured next hop).

Messages in state ``outgoing`` are delivered with the SMTP client (continuity.adapters.
smtp_client: the next hop, or [outbound]'s smart host or each domain's MX), DKIM-signed
when a key for the sender's domain is configured. Each recipient's outcome is recorded;
deferred recipients are retried on the outbound queue's schedule for up to five days;
recipients that fail for good get a delivery status notification to the sender (through
[outbound], towards the sender's own domain) and count
as hard bounces of the sending mailbox. A message with nothing pending becomes
``mirrored``: its copy stays in the sender's Sent folder for the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from continuity.adapters.dkim_signer import DkimSigner
from continuity.core.addresses import domain_of
from continuity.core.delivery import DeliveryReport, DeliveryStatus, RecipientResult
from continuity.core.dsn import build_dsn
from continuity.core.models import RecipientState
from continuity.errors import ContinuityError
from continuity.services.outbound import MAX_AGE, RETRY_DELAYS, Deliverer
from continuity.services.signals import SignalService
from continuity.store.protocol import BlobRepository
from continuity.store.signals_protocol import FeedRepository, OutgoingItem

log = logging.getLogger("continuity.relay")

_BATCH = 50
_CONCURRENCY = 8
_IDLE = 2.0


class RelayWorker:
    """Delivers outgoing relay mail until cancelled."""

    def __init__(
        self,
        feeds: FeedRepository,
        blobs: BlobRepository,
        deliverer: Deliverer,
        signer: DkimSigner,
        hostname: str,
        signals: SignalService | None = None,
        *,
        bouncer: Deliverer | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._feeds = feeds
        self._blobs = blobs
        self._deliverer = deliverer
        self._signer = signer
        self._hostname = hostname
        self._signals = signals
        # Non-delivery reports go to the sender's own domain ([outbound]), not to the next hop.
        self._bouncer = bouncer or deliverer
        self._delays = tuple(retry_delays)
        self._max_age = max_age
        self._clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        self.relayed = 0

    def wake(self) -> None:
        """Look for work now."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            self._wake.clear()
            try:
                while await self.run_due():
                    pass
            except ContinuityError as exc:
                log.error("relay pass failed, retrying: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _IDLE)

    async def run_due(self) -> int:
        """Attempt every due message once (a few at a time); returns how many."""
        due = await self._feeds.outgoing_due(self._clock(), _BATCH)
        await asyncio.gather(*(self._attempt_in_slot(item) for item in due))
        return len(due)

    async def _attempt_in_slot(self, item: OutgoingItem) -> None:
        async with self._slots:
            try:
                await self.attempt(item)
            except ContinuityError as exc:
                log.error("%s: relay attempt failed, retrying later: %s", item.queue_id, exc)
                await self._feeds.finish_attempt(item.queue_id, (), self._next(item.attempts), str(exc))

    def _next(self, attempts: int) -> float:
        return self._clock() + self._delays[min(attempts, len(self._delays) - 1)]

    async def attempt(self, item: OutgoingItem) -> None:
        """One delivery attempt for the pending recipients of item."""
        if not item.recipients:
            await self._feeds.finish_attempt(item.queue_id, (), self._clock(), "")
            return
        content = item.trace_header + await self._blobs.read(item.sha256)
        if item.sender:
            content = await asyncio.to_thread(self._signer.sign, content, domain_of(item.sender.lower()))
        report: DeliveryReport = await self._deliverer.deliver(item.sender, item.recipients, content)
        give_up = self._clock() - item.received_at >= self._max_age
        outcomes: list[tuple[str, RecipientState]] = []
        failed: list[RecipientResult] = []
        for result in report.results:
            if result.status is DeliveryStatus.DELIVERED:
                outcomes.append((result.recipient, RecipientState.DELIVERED))
            elif result.status is DeliveryStatus.FAILED or give_up:
                outcomes.append((result.recipient, RecipientState.FAILED))
                failed.append(result)
            log.info(
                "%s: relay to=<%s> %s: %d %s %s",
                item.queue_id,
                result.recipient,
                result.status.value,
                result.code,
                result.text,
                result.host,
            )
        errors = "; ".join(
            f"{r.recipient}: {r.code} {r.text}" for r in report.results if r.status is not DeliveryStatus.DELIVERED
        )
        done = await self._feeds.finish_attempt(item.queue_id, outcomes, self._next(item.attempts), errors)
        self.relayed += sum(1 for _address, state in outcomes if state is RecipientState.DELIVERED)
        if done:
            log.info("%s: relayed; kept as a mirrored copy", item.queue_id)
        if failed:
            await self._bounce(item, content, failed)

    async def _bounce(self, item: OutgoingItem, content: bytes, failed: list[RecipientResult]) -> None:
        if self._signals is not None and item.mailbox:
            hard = [result.recipient.lower() for result in failed if result.status is DeliveryStatus.FAILED]
            await self._signals.record_bounces(item.mailbox, hard, "relay", item.queue_id)
        if not item.sender:
            return  # never bounce a bounce
        notice = build_dsn(self._hostname, item.sender, failed, content, item.queue_id, item.received_at)
        report = await self._bouncer.deliver("", [item.sender], notice)
        for result in report.results:
            if result.status is not DeliveryStatus.DELIVERED:
                log.error(
                    "%s: the non-delivery report to <%s> was not delivered: %d %s",
                    item.queue_id,
                    item.sender,
                    result.code,
                    result.text,
                )
