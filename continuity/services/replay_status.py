"""Where the replay stands, for ``continuity replay status``, the progress sentence and the admin API.

With the replay's pace (its concurrency and ``mailbox_rate``) the status also predicts how
long the rest of the run takes: the copies left per mailbox at the per-mailbox rate observed
so far in the run (``mailbox_rate`` before there is one), as many mailboxes at once as the
concurrency allows (continuity.core.replay_mailbox_flow.predict_duration).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from continuity.config.settings import Settings
from continuity.core.replay_journal import ItemState
from continuity.core.replay_mailbox_flow import observed_mailbox_rate, predict_duration
from continuity.core.replay_records import MailboxProgress, ReplayRun
from continuity.store.protocol import Store


def _iso(timestamp: float) -> str | None:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds") if timestamp else None


_OPEN = (ItemState.PENDING, ItemState.DELIVERING, ItemState.DEFERRED)


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the replay may go: mailboxes at once and messages per second into one ([replay])."""

    lanes: int
    mailbox_rate: float

    @classmethod
    def of(cls, settings: Settings) -> Pace:
        """The pace [replay] sets."""
        return cls(settings.replay.concurrency, settings.replay.mailbox_rate)


@dataclass(frozen=True, slots=True)
class Prediction:
    """How long the rest of the run should take, and at what per-mailbox rate."""

    seconds: float | None
    mailbox_rate: float | None
    observed: bool

    def sentence(self) -> str:
        """E.g. 'about 12 min left at 3.9 msg/s per mailbox (observed)'."""
        if self.seconds is None:
            return "unknown (no per-mailbox rate observed yet and no [replay] mailbox_rate)"
        rate = f" at {self.mailbox_rate:.1f} msg/s per mailbox" if self.mailbox_rate else ""
        source = " (observed)" if self.observed else " ([replay] mailbox_rate; none observed yet)"
        return f"about {_duration(self.seconds)} left{rate}{source}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def predict(
    run: ReplayRun, mailboxes: tuple[MailboxProgress, ...], unplanned: int, pace: Pace, now: float
) -> Prediction:
    """The rest of run's duration from its copies left per mailbox and the per-mailbox rate observed in it."""
    remaining: dict[str, float] = {
        progress.mailbox: sum(progress.count(state) for state in _OPEN) for progress in mailboxes
    }
    delivered = sum(progress.count(ItemState.DELIVERED) for progress in mailboxes)
    active = sum(1 for progress in mailboxes if progress.count(ItemState.DELIVERED) or remaining[progress.mailbox])
    observed = observed_mailbox_rate(delivered, now - run.started_at, pace.lanes, active)
    rate = observed or (pace.mailbox_rate if pace.mailbox_rate > 0 else None)
    if unplanned and remaining:
        # Copies not planned yet: spread like those planned (their mailboxes are not known yet).
        spread = unplanned / len(remaining)
        remaining = {mailbox: count + spread for mailbox, count in remaining.items()}
    return Prediction(predict_duration(remaining, rate, pace.lanes), rate, observed is not None)


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
    prediction: Prediction | None = None

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
            "predicted_seconds": None if self.prediction is None else self.prediction.seconds,
            "predicted_mailbox_rate": None if self.prediction is None else self.prediction.mailbox_rate,
            "predicted_rate_observed": None if self.prediction is None else self.prediction.observed,
            "mailboxes": {
                progress.mailbox: {state.value: progress.count(state) for state in ItemState}
                for progress in self.mailboxes
            },
        }


async def collect_status(store: Store, run: ReplayRun | None, pace: Pace | None = None) -> ReplayStatus:
    """Read the status of run with its counts per mailbox and a reconciliation of the spool (works in any process).

    With pace, a run not yet completed gets a prediction of how long the rest takes.

    Both are scans of the spool, made on the store's bulk reader: for ``continuity replay
    status`` and the admin API, not for every monitor cycle (see quick_status).
    """
    mailboxes = tuple(await store.replay.progress(run.id)) if run is not None else ()
    reconciled = await store.replay.reconciliation()
    next_retry = await store.replay.next_due()
    prediction = None
    if pace is not None and run is not None and not run.finished_at:
        prediction = predict(run, mailboxes, reconciled.unplanned, pace, time.time())
    return ReplayStatus(
        run, mailboxes, reconciled.unplanned, next_retry, unaccounted=reconciled.unaccounted, prediction=prediction
    )


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
