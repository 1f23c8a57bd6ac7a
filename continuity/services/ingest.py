"""Ingest: from an SMTP transaction to a durable, queued message.

The SMTP adapter asks this service about each recipient and hands it each message;
this service checks, builds the queue row and waits for the group commit. It returns
typed outcomes; only the adapter turns them into SMTP replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from continuity.core.content_checks import ContentLimits, ContentProblem, find_content_problem
from continuity.core.headers import TraceInfo, build_received_header, read_summary_headers
from continuity.core.models import AcceptedRecipient, IncomingMessage, MessageState
from continuity.core.queue_ids import new_queue_id
from continuity.core.recipients import RecipientDecision, decide_recipient
from continuity.errors import StorageError
from continuity.services.directory import DirectoryCache
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


@dataclass(frozen=True, slots=True)
class Accepted:
    """The message is durable under this queue id."""

    queue_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The content may not be stored."""

    problem: ContentProblem


@dataclass(frozen=True, slots=True)
class StorageFailed:
    """The store could not make the message durable; nothing was acknowledged."""

    detail: str


IngestOutcome = Accepted | Refused | StorageFailed


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

    def decide_recipient(self, address: str) -> RecipientDecision:
        """Decide on one RCPT TO address from the in-memory directory."""
        return decide_recipient(address, self._domains, self._directory.entries, self._delimiter)

    async def ingest(self, transaction: TransactionInfo, content: bytes) -> IngestOutcome:
        """Check content and make it durable; returns once it is on disk (or why not)."""
        problem = find_content_problem(content, self._limits)
        if problem is not None:
            log.info(
                "refused message from=<%s> client=[%s]: %s",
                transaction.sender,
                transaction.client_address,
                problem.value,
            )
            return Refused(problem)
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
        message = IncomingMessage(
            queue_id=queue_id,
            sender=transaction.sender,
            recipients=transaction.recipients,
            content=content,
            trace_header=trace,
            received_at=now,
            client_address=transaction.client_address,
            client_helo=transaction.client_helo,
            message_id=summary.message_id,
            subject=summary.subject,
            sha256=hashlib.sha256(content).hexdigest(),
        )
        if self._route is not None and message.state is MessageState.QUEUED:
            message = dataclasses.replace(message, state=self._route())
        self._messages.prepare(message)
        try:
            await self._committer.submit(message)
        except StorageError as exc:
            log.error(
                "storage failure, answering 451 to client=[%s] from=<%s>: %s",
                transaction.client_address,
                transaction.sender,
                exc,
            )
            return StorageFailed(str(exc))
        log.info(
            "%s: accepted from=<%s> to=%s size=%d client=[%s] message-id=%s",
            queue_id,
            transaction.sender,
            ",".join(f"<{r.address}>" for r in transaction.recipients),
            len(content),
            transaction.client_address,
            summary.message_id or "-",
        )
        return Accepted(queue_id)
