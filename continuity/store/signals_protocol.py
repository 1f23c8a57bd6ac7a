"""Store protocols of the feeds (the relay queue, held outbound mail, the mailbox window) and of the signals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from continuity.core.baseline import ContactKind, ContactObservation, HourTotals, SendEvent
from continuity.core.models import QueueEntry, RecipientState
from continuity.core.signals import MailboxState, MailboxStatus, Response, Signal, StoredSignal


@dataclass(frozen=True, slots=True)
class OutgoingItem:
    """A message from the primary waiting to be relayed to the Internet, with its pending recipients."""

    queue_id: str
    sender: str
    mailbox: str
    recipients: tuple[str, ...]
    sha256: str
    trace_header: bytes
    received_at: float
    attempts: int


@dataclass(frozen=True, slots=True)
class HeldOutbound:
    """Outbound mail held for review, with why it is held."""

    entry: QueueEntry
    mailbox: str
    reason: str


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one prune of the mailbox window removed."""

    messages: int
    bodies: int


class FeedRepository(Protocol):
    """The relay feed's queue, its held mail, and the window of mirrored mail."""

    async def outgoing_due(self, now: float, limit: int) -> list[OutgoingItem]:
        """Messages waiting to be relayed whose next attempt is due, oldest first."""
        ...

    async def finish_attempt(
        self,
        queue_id: str,
        outcomes: Sequence[tuple[str, RecipientState]],
        next_attempt_at: float,
        error: str,
    ) -> bool:
        """Record one attempt's outcome per recipient; True when no recipient is pending any more.

        A message with nothing pending becomes mirrored (a copy of mail the primary has).
        """
        ...

    async def held(self, limit: int = 100, offset: int = 0, mailbox: str | None = None) -> list[HeldOutbound]:
        """Outbound mail held for review, newest first."""
        ...

    async def release(self, queue_id: str) -> QueueEntry:
        """Let held outbound mail go to the Internet; NotFoundError unless it is held."""
        ...

    async def delete(self, queue_id: str) -> QueueEntry:
        """Delete held outbound mail (and its body when unshared); NotFoundError unless it is held."""
        ...

    async def prune_window(self, before: float, limit: int = 500) -> PruneReport:
        """Remove up to limit mirrored or gateway-relayed messages received before before (and orphaned bodies)."""
        ...


class SignalRepository(Protocol):
    """Signals, mailbox states, and the history the baselines come from."""

    async def record(self, signal: Signal, responses: Sequence[Response]) -> StoredSignal:
        """Store a signal with the responses taken."""
        ...

    async def since(self, at: float) -> list[StoredSignal]:
        """Every signal recorded at or after at, oldest first."""
        ...

    async def state(self, mailbox: str) -> MailboxState:
        """The mailbox's state (NORMAL when nothing was ever recorded)."""
        ...

    async def states(self) -> list[MailboxState]:
        """Every mailbox that is flagged or contained, or was cleared, by mailbox."""
        ...

    async def set_status(self, mailbox: str, status: MailboxStatus, reason: str, at: float) -> MailboxState:
        """Flag or contain a mailbox (a contained one is never merely flagged)."""
        ...

    async def clear(self, mailbox: str, actor: str, at: float) -> tuple[MailboxState, int]:
        """Set the mailbox back to normal and clear its open signals; returns the old state and how many."""
        ...

    async def add_sends(self, batch: Sequence[tuple[str, SendEvent]]) -> None:
        """Remember outbound messages (mailbox, event) for the baselines."""
        ...

    async def hourly(self, mailbox: str, since: float, until: float) -> list[HourTotals]:
        """The mailbox's totals per hour between since and until (hours with mail only)."""
        ...

    async def recent_sends(self, mailbox: str, since: float) -> list[SendEvent]:
        """The mailbox's outbound messages since then, oldest first."""
        ...

    async def add_bounces(self, batch: Sequence[tuple[str, float, str]]) -> None:
        """Remember hard bounces (mailbox, when, failed recipient)."""
        ...

    async def recent_bounces(self, mailbox: str, since: float) -> list[float]:
        """When the mailbox's mail bounced since then."""
        ...

    async def add_contacts(self, batch: Sequence[ContactObservation]) -> None:
        """Remember addresses mailboxes dealt with."""
        ...

    async def contacts(self, mailbox: str, kinds: Sequence[ContactKind]) -> frozenset[str]:
        """Addresses the mailbox dealt with in these ways."""
        ...

    async def prune(self, before: float, contacts_before: float) -> int:
        """Forget sends and bounces older than before, correspondents not seen since contacts_before; returns rows."""
        ...

    async def list(
        self, limit: int = 100, mailbox: str | None = None, *, open_only: bool = False
    ) -> list[StoredSignal]:
        """Signals, newest first (of one mailbox; only those not cleared)."""
        ...
