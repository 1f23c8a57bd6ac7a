"""Where the replay stands, for ``continuity replay status``, the progress sentence and the admin API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from continuity.config.settings import Settings
from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import MailboxProgress, ReplayRun
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str | None:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds") if timestamp else None


@dataclass(frozen=True, slots=True)
class ReplayStatus:
    """A run, its counts (in total and per mailbox), and what still waits to be planned."""

    run: ReplayRun | None
    mailboxes: tuple[MailboxProgress, ...]
    unplanned: int
    next_retry: float | None
    # Counts by state over the whole run, when the mailboxes were not read (else their sum is the total).
    totals: dict[ItemState, int] = field(default_factory=dict)
    # Standby copies without a final outcome at the last reconciliation (None: not counted).
    unaccounted: int | None = None

    def total(self, state: ItemState) -> int:
        """Items in state, over every mailbox."""
        if self.totals:
            return self.totals.get(state, 0)
        return sum(progress.count(state) for progress in self.mailboxes)

    @property
    def items(self) -> int:
        """Every item of the run."""
        return sum(self.total(state) for state in ItemState)

    @property
    def remaining(self) -> int:
        """Items still to deliver, and rows not yet planned."""
        open_items = sum(self.total(state) for state in (ItemState.PENDING, ItemState.DELIVERING, ItemState.DEFERRED))
        return open_items + self.unplanned

    def as_json(self) -> dict[str, object]:
        """A JSON-serialisable form (``--json`` and the admin API)."""
        run = self.run
        return {
            "run": None
            if run is None
            else {
                "id": run.id,
                "kind": run.kind.value,
                "status": run.status.value,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
                "compromise": run.compromise,
                "needs_confirmation": run.needs_confirmation,
                "confirmed_by": run.confirmed_by or None,
                "manifest": run.manifest_path or None,
                "manifest_sha256": run.manifest_sha256 or None,
                "detail": run.detail or None,
            },
            "totals": {state.value: self.total(state) for state in ItemState},
            "unplanned": self.unplanned,
            "unaccounted": self.unaccounted,
            "next_retry": _iso(self.next_retry) if self.next_retry else None,
            "mailboxes": {
                progress.mailbox: {state.value: progress.count(state) for state in ItemState}
                for progress in self.mailboxes
            },
        }


async def collect_status(store: Store, run: ReplayRun | None) -> ReplayStatus:
    """Read the status of run with its counts per mailbox and a reconciliation of the spool (works in any process).

    Both are scans of the spool, made on the store's bulk reader: for ``continuity replay
    status`` and the admin API, not for every monitor cycle (see quick_status).
    """
    mailboxes = tuple(await store.replay.progress(run.id)) if run is not None else ()
    reconciled = await store.replay.reconciliation()
    next_retry = await store.replay.next_due()
    return ReplayStatus(run, mailboxes, reconciled.unplanned, next_retry, unaccounted=reconciled.unaccounted)


async def quick_status(store: Store, run: ReplayRun) -> ReplayStatus:
    """The run's totals and the standby rows its planner has still to look at: cheap enough for every cycle."""
    current = await store.replay.get_run(run.id) or run
    totals = await store.replay.totals(run.id)
    return ReplayStatus(
        current, (), await store.replay.rows_after(current.planned_through), await store.replay.next_due(), totals
    )


def describe(status: ReplayStatus, settings: Settings, imap_ready: bool) -> str:
    """One sentence for the monitor's log and the failover status."""
    run = status.run
    if run is None:
        return f"{status.unplanned} message copy(ies) wait for replay"
    if run.needs_confirmation:
        return (
            f"run {run.id} waits for an operator's confirmation after the compromise "
            f"({status.remaining} to deliver, {status.total(ItemState.HELD)} held): 'continuity replay' shows them"
        )
    text = (
        f"run {run.id}: {status.total(ItemState.DELIVERED)} of {status.items + status.unplanned} delivered, "
        f"{status.total(ItemState.HELD)} held, {status.total(ItemState.FAILED)} failed, {status.remaining} to go"
    )
    deferred = status.total(ItemState.DEFERRED)
    if deferred:
        text += f" ({deferred} deferred)"
    if not imap_ready and status.remaining:
        text += "; the IMAP master user is not configured ([replay] master_user)"
    if not settings.primary.configured:
        text += "; no primary is configured"
    return text
