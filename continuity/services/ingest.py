"""Ingest: from an SMTP transaction to a durable, queued message.

The SMTP adapter asks this service about each recipient and hands it each message;
this service checks, runs the security filter pipeline, builds the queue row and waits
for the group commit. It returns typed outcomes; only the adapter turns them into SMTP
replies.

Filtering: a REJECT or TEMPFAIL verdict is returned before anything is stored (the
adapter answers 5xx or 451 instead of 250); a QUARANTINE verdict stores the message
in state HELD, in no mailbox until an operator releases it; TAG and ACCEPT store it
normally. The filters' header fields go into the header block stored beside the body
(before the Received field), and the verdict is committed with the queue row; the body
stays exactly the bytes the client sent.

The feeds (the primary's relay and journal, continuity.services.relay_feed and
journal_feed) use the same path with a :class:`Placement` that decides the state
(outgoing, contained, mirrored); an observer hears about every committed message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from continuity.core.content_checks import ContentLimits, ContentProblem, find_content_problem
from continuity.core.headers import TraceInfo, build_received_header, read_summary_headers
from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.pipeline import Direction, Envelope, Verdict
from continuity.core.queue_ids import new_queue_id
from continuity.core.recipients import RecipientDecision, decide_recipient
from continuity.errors import StorageError
from continuity.services.directory import DirectoryCache
from continuity.services.filtering import Judge, PipelineResult
from continuity.store.group_commit import GroupCommitter
from continuity.store.protocol import MessageRepository

log = logging.getLogger("continuity.ingest")


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    """What the SMTP session knows about the sender of one message."""

    client_address: str
    client_helo: str
    protocol: str
    sender: str
    recipients: tuple[AcceptedRecipient, ...]
    # Which way the mail travels (OUTBOUND for the primary's relayed mail) and, for outbound
    # mail, the mailbox that sent it; both go to the filter pipeline's envelope.
    direction: Direction = Direction.INBOUND
    authenticated_user: str = ""


class Placement(Protocol):
    """How a feed other than the MX listener (the primary's relay, its journal) files what it ingests.

    It is asked after the filters and before the commit, so what it decides (relay the
    message, hold it, keep it as a mirrored copy) is durable with the message.
    """

    @property
    def annotate(self) -> bool:
        """Whether the filters' header fields are stored before the message (not for mail leaving)."""
        ...

    async def place(
        self, transaction: TransactionInfo, message: IncomingMessage, filtered: PipelineResult | None
    ) -> MessageState:
        """The state to commit message in (it has its queue id; its state is what the MX would use)."""
        ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """The message is durable under this queue id."""

    queue_id: str
    verdict: Verdict = Verdict.ACCEPT


@dataclass(frozen=True, slots=True)
class Filtered:
    """The filter pipeline refused the message (REJECT) or could not decide now (TEMPFAIL)."""

    result: PipelineResult

    @property
    def verdict(self) -> Verdict:
        """REJECT or TEMPFAIL."""
        return self.result.verdict


@dataclass(frozen=True, slots=True)
class Refused:
    """The content may not be stored."""

    problem: ContentProblem


@dataclass(frozen=True, slots=True)
class StorageFailed:
    """The store could not make the message durable; nothing was acknowledged."""

    detail: str


IngestOutcome = Accepted | Refused | Filtered | StorageFailed


class IngestService:
    """Checks recipients and content, and commits accepted messages durably."""

    def __init__(
        self,
        *,
        domains: frozenset[str],
        directory: DirectoryCache,
        committer: GroupCommitter[IncomingMessage],
        messages: MessageRepository,
        content_limits: ContentLimits,
        hostname: str,
        recipient_delimiter: str = "",
        route: Callable[[], MessageState] | None = None,
        pipeline: Judge | None = None,
        observer: Callable[[IncomingMessage, PipelineResult | None], None] | None = None,
    ) -> None:
        self._domains = domains
        self._directory = directory
        self._committer = committer
        self._messages = messages
        self._limits = content_limits
        self._hostname = hostname
        self._delimiter = recipient_delimiter
        # Failover routing hook: the state a queued message is committed in (gateway mode: relay or queued).
        self._route = route
        # The security filter pipeline (None when [filters] enabled = false).
        self._pipeline = pipeline
        # Told about every committed message (compromise signals watch the mail flow); must not block.
        self._observer = observer

    def decide_recipient(self, address: str) -> RecipientDecision:
        """Decide on one RCPT TO address from the in-memory directory."""
        return decide_recipient(address, self._domains, self._directory.entries, self._delimiter)

    async def ingest(
        self, transaction: TransactionInfo, content: bytes, placement: Placement | None = None
    ) -> IngestOutcome:
        """Check content and make it durable; returns once it is on disk (or why not).

        placement, given by the feeds, decides the state instead of the quarantine and routing rules.
        """
        problem = find_content_problem(content, self._limits)
        if problem is not None:
            log.info(
                "refused message from=<%s> client=[%s]: %s",
                transaction.sender,
                transaction.client_address,
                problem.value,
            )
            return Refused(problem)
        filtered = await self._filter(transaction, content)
        if filtered is not None and filtered.verdict in (Verdict.REJECT, Verdict.TEMPFAIL):
            log.info(
                "%s message from=<%s> client=[%s] message-id=%s: %s (fired: %s)",
                "rejected" if filtered.verdict is Verdict.REJECT else "deferred",
                transaction.sender,
                transaction.client_address,
                read_summary_headers(content).message_id or "-",
                filtered.public_reason,
                ",".join(filtered.fired) or "-",
            )
            return Filtered(filtered)
        now = time.time()
        queue_id = new_queue_id(now)
        single = transaction.recipients[0].address if len(transaction.recipients) == 1 else None
        trace = build_received_header(
            TraceInfo(
                client_helo=transaction.client_helo,
                client_address=transaction.client_address,
                server_hostname=self._hostname,
                protocol=transaction.protocol,
                queue_id=queue_id,
                recipient=single,
                timestamp=now,
            )
        )
        summary = read_summary_headers(content)
        quarantined = filtered is not None and filtered.verdict is Verdict.QUARANTINE
        message = IncomingMessage(
            queue_id=queue_id,
            sender=transaction.sender,
            recipients=transaction.recipients,
            content=content,
            trace_header=(
                filtered.header_block if filtered is not None and (placement is None or placement.annotate) else b""
            )
            + trace,
            received_at=now,
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            message_id=summary.message_id,
            subject=summary.subject,
            sha256=hashlib.sha256(content).hexdigest(),
            state=MessageState.HELD if quarantined else MessageState.QUEUED,
            verdict=filtered.stored(now) if filtered is not None else None,
        )
        if placement is not None:
            message = dataclasses.replace(message, state=await placement.place(transaction, message, filtered))
            quarantined = message.state in (MessageState.HELD, MessageState.CONTAINED)
        elif self._route is not None and message.state is MessageState.QUEUED:
            message = dataclasses.replace(message, state=self._route())
        try:
            # The body is written beside other sessions' bodies first; the group commit
            # then makes the whole batch durable with one flush (see store.blobs).
            await self._messages.prepare(message)
            await self._committer.submit(message)
        except StorageError as exc:
            log.error(
                "storage failure, answering 451 to client=[%s] from=<%s>: %s",
                transaction.client_address,
                transaction.sender,
                exc,
            )
            return StorageFailed(str(exc))
        if self._observer is not None:
            self._observer(message, filtered)
        verdict = filtered.verdict if filtered is not None else Verdict.ACCEPT
        log.info(
            "%s: %s from=<%s> to=%s size=%d client=[%s] message-id=%s",
            queue_id,
            "quarantined" if quarantined else f"accepted ({verdict.value})",
            transaction.sender,
            ",".join(f"<{r.address}>" for r in transaction.recipients),
            len(content),
            transaction.client_address,
            summary.message_id or "-",
        )
        return Accepted(queue_id, verdict)

    async def _filter(self, transaction: TransactionInfo, content: bytes) -> PipelineResult | None:
        if self._pipeline is None:
            return None
        envelope = Envelope(
            sender=transaction.sender,
            recipients=tuple(recipient.address for recipient in transaction.recipients),
            direction=transaction.direction,
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            authenticated_user=transaction.authenticated_user,
        )
        return await self._pipeline.evaluate(envelope, content)
