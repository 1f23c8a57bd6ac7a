"""When a replayed message is done: the settlement rule, and the end-of-run reconciliation's counts.

Pure. A message has one standby copy per mailbox it reached; the replay makes one
journal item per copy, planned in batches while earlier batches are already being
delivered. A message is ``replayed`` only when every copy it has is delivered: a copy
that has no item yet (planned in a later batch) keeps it ``queued``, so the planner,
which only takes ``queued`` messages, still plans that copy. Judging from the items
alone settled a two-mailbox message after its first copy and lost the second.

At the end of a run the reconciliation counts every standby copy of the spool against
the journal; the run is complete only when no copy is left without a final outcome.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from continuity.core.models import MessageState
from continuity.core.replay_journal import OPEN, ItemState


def settled_state(
    current: MessageState, item_states: Collection[ItemState], unplanned_copies: int
) -> MessageState | None:
    """The state a message moves to after its items changed, or None when it stays.

    ``item_states`` are the states of the message's journal items; ``unplanned_copies``
    counts its standby copies that have no item yet.
    """
    if current is MessageState.QUEUED:
        done = bool(item_states) and unplanned_copies == 0 and all(s is ItemState.DELIVERED for s in item_states)
        return MessageState.REPLAYED if done else None
    if current is MessageState.REPLAYED:
        # Reopened for another delivery, or a copy that was never planned (a run settled too early).
        reopened = unplanned_copies > 0 or any(state in OPEN for state in item_states)
        return MessageState.QUEUED if reopened else None
    return None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Every standby copy of the spool that the replay must account for, by where it stands.

    A copy of a ``queued`` or ``replayed`` message is counted by its journal item's state
    (``unplanned`` when it has none); every copy of a ``held`` message counts as held.
    """

    copies: int = 0
    delivered: int = 0
    held: int = 0
    failed: int = 0
    open: int = 0
    unplanned: int = 0
    # Copies without a delivered item whose message is marked replayed (settled too early).
    replayed_without_copy: int = 0

    @property
    def unaccounted(self) -> int:
        """Copies that are neither delivered, held nor given up: the run cannot be complete."""
        return self.open + self.unplanned

    @property
    def complete(self) -> bool:
        """Every copy has a final outcome."""
        return self.unaccounted == 0 and self.replayed_without_copy == 0


def reconcile(counts: Collection[tuple[MessageState, ItemState | None, int]]) -> Reconciliation:
    """The reconciliation from counts of copies per (message state, item state or None)."""
    delivered = held = failed = open_ = unplanned = premature = 0
    for message_state, item_state, count in counts:
        if message_state is MessageState.HELD or item_state is ItemState.HELD:
            held += count
        elif item_state is ItemState.DELIVERED:
            delivered += count
        elif item_state is ItemState.FAILED:
            failed += count
        elif item_state is None:
            unplanned += count
        else:
            open_ += count
        if message_state is MessageState.REPLAYED and item_state is not ItemState.DELIVERED:
            premature += count
    return Reconciliation(
        delivered + held + failed + open_ + unplanned, delivered, held, failed, open_, unplanned, premature
    )
