"""Which replay run is current: derived from the failover state, so a restart resumes it.

RESTORING has one *restoration* run per restoration (a run completed before RESTORING
was entered belongs to an earlier one). FAILING_BACK and NORMAL have *straggler* runs,
created only when queued mail is found. A new run takes over the open items of older
ones. A restoration after a compromise (any COMPROMISED state since the last NORMAL)
waits for an operator's confirmation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from continuity.config.settings import Settings
from continuity.core.audit import AuditRecord
from continuity.core.failover import FailoverRecord, FailoverState
from continuity.core.replay_records import ReplayRun, RunKind, RunStatus
from continuity.store.protocol import Store

log = logging.getLogger("continuity.replay")


def replay_mode(settings: Settings, record: FailoverRecord) -> RunKind | None:
    """The kind of run the failover state calls for, or None (nothing may be delivered)."""
    if not (settings.replay.enabled and settings.primary.configured):
        return None
    if record.state is FailoverState.RESTORING:
        return RunKind.RESTORATION
    if record.state in (FailoverState.NORMAL, FailoverState.FAILING_BACK) and settings.replay.stragglers:
        return RunKind.STRAGGLERS
    return None


class RunKeeper:
    """Finds, resumes and creates runs."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()

    async def restoration_run(self, record: FailoverRecord) -> ReplayRun | None:
        """The restoration run of the current restoration, or None."""
        latest = await self._store.replay.latest_run(RunKind.RESTORATION)
        if latest is None:
            return None
        if latest.status is RunStatus.COMPLETED and latest.finished_at < record.since:
            return None  # completed in an earlier restoration
        return latest

    async def compromise_episode(self, record: FailoverRecord) -> bool:
        """True when a compromise was declared since the last NORMAL state."""
        if record.state is FailoverState.COMPROMISED:
            return True
        for entry in reversed(await self._store.failover.history(1000)):
            if FailoverState.COMPROMISED in (entry.state, entry.previous):
                return True
            if entry.state is FailoverState.NORMAL:
                return False
        return False

    async def current(self, kind: RunKind, record: FailoverRecord) -> ReplayRun | None:
        """The run to work on (resumed or created), or None when a straggler run has nothing to do."""
        async with self._lock:
            return await self._current(kind, record)

    async def _current(self, kind: RunKind, record: FailoverRecord) -> ReplayRun | None:
        latest = await self._store.replay.latest_run(kind)
        if latest is not None and latest.status is not RunStatus.COMPLETED:
            if latest.status is RunStatus.STOPPED:
                # Resumed after RESTORING was left: within a compromise episode, only after a (new) confirmation.
                if kind is RunKind.RESTORATION and await self.compromise_episode(record):
                    await self._store.replay.require_confirmation(latest.id)
                else:
                    await self._store.replay.set_run_status(latest.id, RunStatus.ACTIVE)
                latest = await self._store.replay.get_run(latest.id)
            return latest
        if kind is RunKind.RESTORATION:
            if latest is not None and latest.finished_at >= record.since:
                return latest
            compromise = await self.compromise_episode(record)
        else:
            if not await self._store.replay.has_unplanned() and not await self._store.replay.open_count():
                return None
            compromise = False
        run = await self._store.replay.create_run(kind, compromise, self._clock())
        adopted = await self._store.replay.adopt_open(run.id)
        note = " (after a compromise: it waits for an operator's confirmation)" if compromise else ""
        await self._store.audit.append(
            AuditRecord.of(
                "replayer",
                "replay.start",
                f"{kind.value} run {run.id} started{note}",
                {"run": run.id, "kind": kind.value, "compromise": compromise, "adopted": adopted},
            )
        )
        log.warning("replay: %s run %d started%s", kind.value, run.id, note)
        return run

    async def trivially_done(self, run: ReplayRun) -> bool:
        """True when run has no item and nothing waits to be planned."""
        return not await self._store.replay.totals(run.id) and not await self._store.replay.has_unplanned()
