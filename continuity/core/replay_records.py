"""Stored records of the replay: runs, journal items, updates, per-mailbox counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Channel, ItemKind


class RunKind(StrEnum):
    """Why a run exists."""

    # Entered RESTORING: everything the standby holds goes back.
    RESTORATION = "restoration"
    # After failback: mail that still reached the standby (cached MX records, backup MX).
    STRAGGLERS = "stragglers"


class RunStatus(StrEnum):
    """Where a run stands."""

    ACTIVE = "active"
    # After a compromise: nothing is delivered before an operator confirms.
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    # RESTORING was left (the primary fell again, a pause): resumes on the next start.
    STOPPED = "stopped"
    # Drained and verified; the manifest is written.
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class ReplayRun:
    """One replay run."""

    id: int
    kind: RunKind
    status: RunStatus
    started_at: float
    compromise: bool
    confirmed_by: str = ""
    confirmed_at: float = 0.0
    finished_at: float = 0.0
    manifest_path: str = ""
    manifest_sha256: str = ""
    detail: str = ""
    # The last standby copy (mailbox_messages id) the planner has looked at.
    planned_through: int = 0

    @property
    def needs_confirmation(self) -> bool:
        """True while an operator must still confirm the deliveries."""
        return self.compromise and not self.confirmed_by


@dataclass(frozen=True, slots=True)
class JournalItem:
    """One journal item with the current standby state of its message (for a delivery)."""

    id: int
    run_id: int
    queue_id: str
    mailbox: str
    row_id: int
    kind: ItemKind
    channel: Channel
    folder: tuple[str, ...]
    flags: tuple[str, ...]
    state: ItemState
    # Attempts made before (a claim returns the count from before it): > 0 means an earlier copy may be there.
    attempts: int
    first_attempt_at: float
    next_attempt_at: float
    detail: str
    delivered_at: float
    placed_folder: str
    placed_flags: str
    released: bool
    message_id: str
    sha256: str
    size: int
    sender: str
    subject: str
    received_at: float
    recipients: tuple[str, ...]
    # The standby row now (folder, flags, expunged), for re-planning at claim time.
    standby_folder: str = "INBOX"
    standby_flags: str = ""
    standby_expunged: bool = False
    client_helo: str = ""
    client_address: str = ""
    # The header block stored on receipt (Received, the filters' fields), sent before the body.
    trace_header: bytes = b""
    # The verdict stored for the message ("" when none): a quarantine verdict on a queued message means released.
    stored_verdict: str = ""


@dataclass(frozen=True, slots=True)
class ItemUpdate:
    """The outcome of an attempt, to be stored."""

    item_id: int
    state: ItemState
    at: float
    detail: str = ""
    code: int = 0
    next_attempt_at: float = 0.0
    # Where the copy now is on the primary (IMAP), when delivered.
    placed_folder: str = ""
    placed_flags: str = ""


@dataclass(frozen=True, slots=True)
class MailboxProgress:
    """Counts of one mailbox's items by state."""

    mailbox: str
    counts: dict[ItemState, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Every item."""
        return sum(self.counts.values())

    def count(self, state: ItemState) -> int:
        """Items in state."""
        return self.counts.get(state, 0)


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One item as the manifest lists it."""

    mailbox: str
    queue_id: str
    message_id: str
    sha256: str
    state: ItemState
    kind: ItemKind
    channel: Channel
    folder: str
    flags: str
    attempts: int
    detail: str
    delivered_at: float
    subject: str
    sender: str
    received_at: float


@dataclass(frozen=True, slots=True)
class Placement:
    """A delivered IMAP item as verification checks it."""

    item_id: int
    mailbox: str
    folder: str
    marker: str
