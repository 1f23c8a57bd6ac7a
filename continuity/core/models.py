"""Value types shared across the appliance: mailboxes, envelopes, queued messages and their states."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from continuity.core.filter_records import StoredVerdict


class MessageState(StrEnum):
    """Where a message stands in the queue."""

    # Stored in the standby mailbox and waiting to be replayed into the primary.
    QUEUED = "queued"
    # Replayed into the primary (kept for the retention period, then pruned).
    REPLAYED = "replayed"
    # Held for an operator's review (quarantine, compromise).
    HELD = "held"
    # Gateway mode, primary serving: to be relayed to the primary (a copy stays in the standby mailbox).
    RELAY = "relay"
    # Gateway mode: relayed to the primary; never replayed.
    RELAYED = "relayed"
    # Feeds (the primary's relay, its journal): a copy of mail the primary already has, kept in the
    # standby mailboxes for the rolling window and then pruned. Never replayed into the primary.
    MIRRORED = "mirrored"
    # Relay feed: the primary's outbound mail waiting to be relayed to the Internet (then mirrored).
    # Never replayed into the primary: it came from there.
    OUTGOING = "outgoing"
    # Relay feed: the primary's outbound mail held for review (a contained mailbox, or judged
    # malicious); an admin releases it to the Internet or deletes it. Never replayed.
    CONTAINED = "contained"


class RecipientState(StrEnum):
    """Per-recipient delivery state of a queued message."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A pre-provisioned standby mailbox."""

    address: str
    display_name: str
    aliases: tuple[str, ...] = ()
    enabled: bool = True
    alternate_email: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def has_password(self) -> bool:
        """True when a password is set (otherwise the account awaits activation)."""
        return bool(self.password_hash)


class UpsertOutcome(StrEnum):
    """What an idempotent upsert did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """What the SMTP listener needs to know about an address: its mailbox and whether it is enabled."""

    mailbox: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class AcceptedRecipient:
    """A recipient accepted at RCPT time: the address as given and the mailbox it resolves to."""

    address: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message that passed every check and is about to be made durable."""

    queue_id: str
    sender: str
    recipients: tuple[AcceptedRecipient, ...]
    content: bytes
    trace_header: bytes
    received_at: float
    client_address: str
    client_helo: str
    message_id: str
    subject: str
    sha256: str
    # The state the message is committed in (queued, held, relay); HELD = quarantined, in no mailbox.
    state: MessageState = MessageState.QUEUED
    # The security filter pipeline's verdict, stored in the same transaction as the row.
    verdict: StoredVerdict | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A queued message as listed by ``continuity queue list``."""

    queue_id: str
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    size: int
    state: MessageState
    received_at: float
    sha256: str
    subject: str
    client_address: str
    client_helo: str
