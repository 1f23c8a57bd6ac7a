"""The relay feed: the primary's outbound mail, inspected and held or queued for the Internet.

The relay listener hands each message here. It goes through the one ingest path (content
checks, the filter pipeline with the OUTBOUND direction, the group commit: "250 means
durable" holds here too) with a :class:`RelayPlacement` that decides, before the commit,
whether it is relayed (state ``outgoing``) or held for review (``contained``): held when
the signals say the sending mailbox is contained, when the filters quarantine it, or while
the primary is declared compromised. Mail the filters reject is refused with 550 (the
primary then tells its user) and reported as a signal.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from continuity.core.models import IncomingMessage, MessageState
from continuity.core.pipeline import Direction, Verdict
from continuity.services.filtering import PipelineResult
from continuity.services.ingest import Filtered, IngestOutcome, IngestService, TransactionInfo
from continuity.services.signals import OutboundFacts, SignalService

log = logging.getLogger("continuity.feeds")

SOURCE = "relay"


class RelayPlacement:
    """Decides whether a message from the primary is relayed or held."""

    annotate = False  # the filters' header fields must not leave with the message

    def __init__(self, signals: SignalService | None, primary_compromised: Callable[[], bool]) -> None:
        self._signals = signals
        self._compromised = primary_compromised

    async def place(
        self, transaction: TransactionInfo, message: IncomingMessage, filtered: PipelineResult | None
    ) -> MessageState:
        reasons: list[str] = []
        # Mail from the null sender (the primary's own bounces) belongs to no mailbox's behaviour.
        if self._signals is not None and transaction.authenticated_user:
            facts = OutboundFacts.of(transaction.authenticated_user, message, filtered, SOURCE)
            assessment = await self._signals.assess_outbound(facts)
            if assessment.hold:
                reasons.append(assessment.reason)
        if filtered is not None and filtered.verdict is Verdict.QUARANTINE and not reasons:
            reasons.append(f"quarantined by the filters: {filtered.public_reason}")
        if self._compromised():
            reasons.append("the primary is declared compromised")
        if reasons:
            log.info(
                "%s: held outbound mail from=<%s> to=%d recipients: %s",
                message.queue_id,
                message.sender,
                len(message.recipients),
                "; ".join(reasons),
            )
            return MessageState.CONTAINED
        return MessageState.OUTGOING


class RelayFeed:
    """Ingests the primary's outbound mail."""

    def __init__(
        self,
        ingest: IngestService,
        signals: SignalService | None,
        primary_compromised: Callable[[], bool],
        wake: Callable[[], None],
        mailbox_for: Callable[[str], str],
    ) -> None:
        self._ingest = ingest
        self._signals = signals
        self._placement = RelayPlacement(signals, primary_compromised)
        self._wake = wake
        self._mailbox_for = mailbox_for

    async def ingest(self, transaction: TransactionInfo, content: bytes) -> IngestOutcome:
        """Commit one relayed message (outgoing or contained) or say why not."""
        mailbox = self._mailbox_for(transaction.sender) if transaction.sender else ""
        outbound = dataclasses.replace(transaction, direction=Direction.OUTBOUND, authenticated_user=mailbox)
        outcome = await self._ingest.ingest(outbound, content, self._placement)
        if isinstance(outcome, Filtered) and outcome.verdict is Verdict.REJECT and self._signals and mailbox:
            await self._report_rejected(outbound, content, outcome.result)
        self._wake()
        return outcome

    async def _report_rejected(self, transaction: TransactionInfo, content: bytes, result: PipelineResult) -> None:
        assert self._signals is not None
        message = IncomingMessage(
            queue_id="",
            sender=transaction.sender,
            recipients=transaction.recipients,
            content=content,
            trace_header=b"",
            received_at=0.0,
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            message_id="",
            subject="",
            sha256="",
        )
        facts = OutboundFacts.of(transaction.authenticated_user, message, result, SOURCE)
        await self._signals.assess_outbound(facts, can_hold=False)
