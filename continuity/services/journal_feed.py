"""The journal feed: Exchange journal reports unwrapped into mirrored copies and signals.

A report sent to ``[feeds] journal_address`` (through the relay listener, so only the
primary can send one) is unwrapped: the original message is committed through the one
ingest path with its envelope recipients from the report, in state ``mirrored`` (a copy
of mail the primary already has, for the standby mailboxes' window; never replayed). The
filter pipeline sees it (INBOUND or OUTBOUND by its sender), which teaches the thread and
account memories; outbound copies are judged by the signals like relayed mail (they cannot
be held: the primary has sent them already), and ``Forwarded:`` annotations that send a
mailbox's mail outside raise forwarding signals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from continuity.core.journal import JournalReport, parse_journal_report
from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.pipeline import Direction, Verdict
from continuity.errors import InvalidInputError
from continuity.services.filtering import PipelineResult
from continuity.services.ingest import Accepted, Filtered, IngestOutcome, IngestService, TransactionInfo
from continuity.services.signals import OutboundFacts, SignalService

log = logging.getLogger("continuity.feeds")

SOURCE = "journal"


@dataclass(frozen=True, slots=True)
class JournalRefused:
    """The report cannot be used (not a journal report, no original message)."""

    reason: str


@dataclass(frozen=True, slots=True)
class JournalDropped:
    """The filters reject the journaled message: it is not mirrored (the report is still taken)."""

    reason: str


JournalOutcome = IngestOutcome | JournalRefused | JournalDropped


class JournalPlacement:
    """Journaled copies are mirrored; outbound ones are judged by the signals first."""

    annotate = True  # the copy is shown in the webmail, with the filters' findings

    def __init__(self, signals: SignalService | None) -> None:
        self._signals = signals

    async def place(
        self, transaction: TransactionInfo, message: IncomingMessage, filtered: PipelineResult | None
    ) -> MessageState:
        if self._signals is not None and transaction.direction is Direction.OUTBOUND:
            facts = OutboundFacts.of(transaction.authenticated_user, message, filtered, SOURCE)
            await self._signals.assess_outbound(facts, can_hold=False)
        return MessageState.MIRRORED


class JournalFeed:
    """Unwraps journal reports."""

    def __init__(
        self,
        ingest: IngestService,
        signals: SignalService | None,
        mailbox_of: Callable[[str], str | None],
        internal: Callable[[str], bool],
    ) -> None:
        self._ingest = ingest
        self._signals = signals
        self._placement = JournalPlacement(signals)
        self._mailbox_of = mailbox_of
        self._internal = internal

    async def ingest_report(self, transaction: TransactionInfo, content: bytes) -> JournalOutcome:
        """Unwrap and commit one journal report."""
        try:
            report = await asyncio.to_thread(parse_journal_report, content)
        except InvalidInputError as exc:
            log.warning("refused a journal report from client=[%s]: %s", transaction.client_address, exc)
            return JournalRefused(str(exc))
        sender = report.sender
        outbound = bool(sender) and self._internal(sender)
        sender_mailbox = (self._mailbox_of(sender) or sender) if outbound else ""
        recipients = tuple(AcceptedRecipient(address, self._mailbox_of(address) or "") for address in report.addresses)
        inner = TransactionInfo(
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            protocol=transaction.protocol,
            sender=sender,
            recipients=recipients,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            authenticated_user=sender_mailbox,
        )
        outcome = await self._ingest.ingest(inner, report.message, self._placement)
        if isinstance(outcome, Filtered) and outcome.verdict is Verdict.REJECT:
            log.warning(
                "journaled message %s from=<%s> not mirrored: %s",
                report.message_id,
                sender,
                outcome.result.public_reason,
            )
            if self._signals is not None and outbound:
                await self._report_rejected(inner, report, outcome.result)
            return JournalDropped(outcome.result.public_reason)
        if isinstance(outcome, Accepted):
            await self._forwards(report, outcome.queue_id)
            log.info(
                "%s: journal report unwrapped: message-id=%s from=<%s> %d recipient(s)",
                outcome.queue_id,
                report.message_id or "-",
                sender,
                len(recipients),
            )
        return outcome

    async def _forwards(self, report: JournalReport, queue_id: str) -> None:
        if self._signals is None:
            return
        for recipient in report.recipients:
            source = recipient.forwarded_by
            if source and self._internal(source) and not self._internal(recipient.address):
                await self._signals.note_forward(
                    self._mailbox_of(source) or source, recipient.address, SOURCE, queue_id
                )

    async def _report_rejected(
        self, transaction: TransactionInfo, report: JournalReport, result: PipelineResult
    ) -> None:
        assert self._signals is not None
        message = IncomingMessage(
            queue_id="",
            sender=transaction.sender,
            recipients=transaction.recipients,
            content=report.message,
            trace_header=b"",
            received_at=0.0,
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            message_id=report.message_id,
            subject=report.subject,
            sha256="",
        )
        await self._signals.assess_outbound(
            OutboundFacts.of(transaction.authenticated_user, message, result, SOURCE), can_hold=False
        )
