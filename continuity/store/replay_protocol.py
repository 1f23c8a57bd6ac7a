"""The replay repository protocol: runs, the per-recipient journal, holds, verification data, pruning."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Candidate, Channel, PlannedItem, ReceivedShape
from continuity.core.replay_records import (
    ItemUpdate,
    JournalItem,
    MailboxProgress,
    ManifestRow,
    Placement,
    ReplayRun,
    RunKind,
    RunStatus,
)
from continuity.core.replay_settlement import Reconciliation


class ReplayRepository(Protocol):
    """What the replayer stores. Every state change is committed before the call returns."""

    async def create_run(self, kind: RunKind, compromise: bool, at: float) -> ReplayRun:
        """Start a run (awaiting confirmation when compromise)."""
        ...

    async def latest_run(self, kind: RunKind | None = None) -> ReplayRun | None:
        """The newest run (of kind), or None."""
        ...

    async def get_run(self, run_id: int) -> ReplayRun | None:
        """One run, or None."""
        ...

    async def runs(self, limit: int = 20) -> list[ReplayRun]:
        """The newest runs, newest first."""
        ...

    async def set_run_status(self, run_id: int, status: RunStatus, detail: str = "") -> None:
        """Change a run's status (not to completed: see finish_run)."""
        ...

    async def require_confirmation(self, run_id: int) -> None:
        """A compromise happened: run waits for a (new) operator's confirmation before it delivers more."""
        ...

    async def confirm_run(self, run_id: int, actor: str, at: float) -> ReplayRun:
        """Record the operator's confirmation; the run becomes active. NotFoundError for an unknown run."""
        ...

    async def finish_run(self, run_id: int, at: float, manifest_path: str, manifest_sha256: str) -> None:
        """Mark a run completed with its manifest."""
        ...

    async def candidates(self, limit: int) -> list[Candidate]:
        """Standby rows of queued messages that have no journal item yet, in row order (for displays)."""
        ...

    async def candidates_after(self, after_row_id: int, limit: int) -> tuple[list[Candidate], int]:
        """The candidates among the next limit standby rows after after_row_id, and the last row id looked at."""
        ...

    async def has_unplanned(self) -> bool:
        """True when some standby row of a queued message has no journal item."""
        ...

    async def unplanned_count(self) -> int:
        """Standby rows of queued messages without a journal item (a scan of the spool)."""
        ...

    async def rows_after(self, row_id: int) -> int:
        """Standby rows after row_id (what a planner at that cursor has still to look at)."""
        ...

    async def add_items(
        self,
        run_id: int,
        items: Sequence[tuple[PlannedItem, ItemState, str]],
        at: float,
        planned_through: int | None = None,
    ) -> int:
        """Create journal items (pending, or held with a reason); existing (message, mailbox) pairs are kept.

        With planned_through, the run's planning cursor moves there in the same transaction.
        """
        ...

    async def plan_window(
        self,
        run_id: int,
        after_row_id: int,
        limit: int,
        plan: Callable[[Candidate], PlannedItem],
        at: float,
        received: ReceivedShape | None = None,
    ) -> tuple[int, int]:
        """Plan the next limit standby rows after after_row_id as pending items and move the cursor, in one go.

        plan is pure and fast: it runs where the store runs the transaction (SQLite: the
        writer thread), so a large run's planning is not one task among the deliveries on
        the event loop. With received (the shape every received message's item shares),
        those items are planned in bulk without plan. Returns (items created, the last row
        id looked at).
        """
        ...

    async def reconciliation(self) -> Reconciliation:
        """Every standby copy of the spool counted against the journal (a scan of the spool)."""
        ...

    async def requeue_unsettled(self) -> int:
        """Messages marked replayed with a copy that was never delivered become queued again; returns how many."""
        ...

    async def restart_planning(self, run_id: int) -> None:
        """Send run's planning cursor back to the first standby row."""
        ...

    async def reopen_released(self, run_id: int, at: float) -> int:
        """Held items whose message an operator released from quarantine become pending in run_id."""
        ...

    async def changed_after_delivery(self, limit: int) -> list[JournalItem]:
        """Delivered IMAP items whose standby row changed (moved, flagged) after their delivery."""
        ...

    async def reopen(self, item_ids: Sequence[int], run_id: int, detail: str, at: float) -> int:
        """Delivered or failed items become pending again in run_id (resync, verification miss, retry)."""
        ...

    async def interrupted(self, at: float) -> int:
        """Items left delivering by a crash become deferred, due now (their delivery is checked first)."""
        ...

    async def adopt_open(self, run_id: int) -> int:
        """Move the open items of older runs into run_id (a new run takes over what is left)."""
        ...

    async def due_mailboxes(self, channel: Channel, now: float, run_id: int) -> list[tuple[str, int]]:
        """Mailboxes with items of run_id due on channel, with how many."""
        ...

    async def claim(
        self, channel: Channel, mailbox: str | None, limit: int, now: float, run_id: int
    ) -> list[JournalItem]:
        """Mark up to limit due items of run_id (of mailbox, when given) delivering, durably, and return them."""
        ...

    async def record(self, updates: Sequence[ItemUpdate]) -> None:
        """Store outcomes in one transaction; a message whose items are all delivered becomes replayed."""
        ...

    async def hold(self, queue_id: str, detail: str, at: float) -> int:
        """Hold a message from the primary: the message becomes held (quarantine) and so do its open items."""
        ...

    async def open_count(self, run_id: int | None = None) -> int:
        """Items still needing work (pending, delivering, deferred), in run_id or in all runs."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest deferred item is due, or None."""
        ...

    async def progress(self, run_id: int | None = None) -> list[MailboxProgress]:
        """Counts by state per mailbox, for run_id or for every run."""
        ...

    async def items(
        self, run_id: int, states: Sequence[ItemState] = (), limit: int = 1000, offset: int = 0
    ) -> list[JournalItem]:
        """Items of a run (in states, when given), by mailbox and id."""
        ...

    async def totals(self, run_id: int) -> dict[ItemState, int]:
        """Counts of run_id's items by state (cheaper than progress: no mailboxes)."""
        ...

    async def manifest_page(self, run_id: int, after_item_id: int, limit: int) -> list[tuple[int, ManifestRow]]:
        """The next limit items of a run after after_item_id, in id order, with their ids, for the manifest."""
        ...

    async def placement_mailboxes(self, run_id: int) -> list[str]:
        """Mailboxes with delivered IMAP items in run_id."""
        ...

    async def placements(self, run_id: int, mailbox: str) -> list[Placement]:
        """Delivered IMAP items of a run in mailbox and where they were put, for verification."""
        ...

    async def unwarned_deferred(self, first_attempt_before: float) -> list[JournalItem]:
        """Deferred items retried since before first_attempt_before whose admins were not yet warned."""
        ...

    async def mark_warned(self, item_ids: Sequence[int]) -> None:
        """Remember that the admins were warned about these items."""
        ...

    async def retry_failed(self, run_id: int, at: float) -> int:
        """Failed items of every run become pending in run_id; returns how many."""
        ...

    async def prune_replayed(self, delivered_before: float, limit: int = 500) -> int:
        """Delete replayed messages whose every copy was delivered before delivered_before; returns how many."""
        ...
