"""Store protocols of the filter pipeline: verdicts, the thread/correspondent memory, the quarantine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from continuity.core.filter_records import (
    AccountObservation,
    DocumentObservation,
    StoredVerdict,
    ThreadHistory,
    ThreadObservation,
)
from continuity.core.models import QueueEntry


class VerdictRepository(Protocol):
    """Each filtered message's verdict and findings (for the webmail banner and for replay)."""

    async def record(self, queue_id: str, verdict: StoredVerdict) -> None:
        """Store (or replace) the verdict of a message; inbound mail gets it with its queue row instead."""
        ...

    async def get(self, queue_id: str) -> StoredVerdict | None:
        """The stored verdict of a message, or None."""
        ...


class FilterMemoryRepository(Protocol):
    """What the pipeline remembers of the mail it saw: threads and correspondents' bank accounts."""

    async def observe_threads(self, batch: Sequence[ThreadObservation]) -> None:
        """Remember messages (an existing Message-ID keeps its first record)."""
        ...

    async def thread(self, message_ids: Sequence[str]) -> ThreadHistory:
        """What is known about the messages with these Message-IDs."""
        ...

    async def add_accounts(self, batch: Sequence[AccountObservation]) -> None:
        """Remember bank accounts used by correspondents."""
        ...

    async def accounts(self, correspondent: str) -> frozenset[str]:
        """Accounts this correspondent used before."""
        ...

    async def add_documents(self, batch: Sequence[DocumentObservation]) -> None:
        """Remember fingerprints of documents correspondents sent (a message's document replaces its record)."""
        ...

    async def documents(
        self, correspondent: str, message_ids: Sequence[str], since: float
    ) -> tuple[DocumentObservation, ...]:
        """Recent documents (seen at or after since) from this correspondent or in these messages, newest first."""
        ...

    async def known_domains(self, min_messages: int = 2, limit: int = 5000) -> frozenset[str]:
        """Sender domains seen in at least min_messages messages, the most frequent first."""
        ...

    async def prune(self, before: float) -> int:
        """Forget thread and document records older than before (epoch seconds); returns how many."""
        ...


class QuarantineRepository(Protocol):
    """Held messages: listed, released into the recipients' Inboxes, or deleted."""

    async def list(self, limit: int = 100, offset: int = 0, mailbox: str | None = None) -> list[QueueEntry]:
        """Held messages, newest first (only those for mailbox when given)."""
        ...

    async def release(self, queue_id: str) -> QueueEntry:
        """Move a held message into its recipients' Inboxes; NotFoundError unless it is held."""
        ...

    async def delete(self, queue_id: str) -> QueueEntry:
        """Delete a held message (and its body when no other message shares it); NotFoundError unless held."""
        ...
