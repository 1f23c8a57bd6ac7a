"""Planning a replay run: journal items for the standby's queued mail, holds after a compromise, resyncs.

A planning pass (every few seconds while a run is open; each pass looks only at the standby
rows added since the last, from a cursor kept with the run, so a run of N rows is planned in
O(N) however many passes it takes):

* every standby row of a ``queued`` message that has no journal item gets one (only
  ``queued`` messages are replayed: relayed, mirrored or outgoing copies came from the
  primary or already reached it);
* after a compromise, a message that came from the primary itself (its address, or
  ``[replay] primary_networks``) is held for review instead;
* held items whose message an operator released from quarantine become pending;
* during a restoration, a delivered copy whose standby row changed since (the user moved
  or flagged it in the webmail meanwhile) is reopened, so the primary ends up as the user
  left it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable

from continuity.config.replay import ReplayMethod, ReplaySettings
from continuity.core.pipeline import Verdict
from continuity.core.replay_journal import ItemState
from continuity.core.replay_plan import Candidate, FolderMap, PlannedItem, plan_item, received_shape
from continuity.core.replay_records import ReplayRun
from continuity.services.replay_gate import compromise_verdict, hold_message
from continuity.store.protocol import Store

log = logging.getLogger("continuity.replay")

_RESYNC_BATCH = 500  # changed copies reopened per pass
COMPROMISE_REASON = "came from the primary while it was compromised: held for review"


def folder_map(settings: ReplaySettings) -> FolderMap:
    """The folder names on the primary, from [replay.folders]."""
    folders = settings.folders
    return FolderMap(folders.inbox, folders.sent, folders.drafts, folders.trash, folders.junk, folders.user_parent)


class PrimaryAddresses:
    """The addresses the primary sends from: its host's addresses and the configured networks."""

    def __init__(self, host: str, networks: list[str]) -> None:
        self._host = host
        self._networks = [ipaddress.ip_network(network) for network in networks]
        self._resolved: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()

    async def refresh(self) -> None:
        """Resolve the primary's host name (a failure keeps the previous addresses)."""
        if not self._host:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(self._host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.warning("cannot resolve the primary %s to recognise its mail: %s", self._host, exc)
            return
        self._resolved = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}

    def matches(self, address: str) -> bool:
        """True when address is one of the primary's."""
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return ip in self._resolved or any(ip in network for network in self._networks)


class ReplayPlanner:
    """Creates and refreshes a run's journal items."""

    def __init__(
        self, store: Store, settings: ReplaySettings, primary: PrimaryAddresses, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._settings = settings
        self._folders = folder_map(settings)
        self._received = received_shape(self._folders, smtp_for_received=settings.method is ReplayMethod.SMTP)
        self._primary = primary
        self._clock = clock

    def plan(self, candidate: Candidate) -> PlannedItem:
        """The journal item of one standby row (pure)."""
        return plan_item(candidate, self._folders, smtp_for_received=self._settings.method is ReplayMethod.SMTP)

    async def pending_candidates(self, limit: int) -> list[Candidate]:
        """Rows still without an item (for dry runs and displays)."""
        return await self._store.replay.candidates(limit)

    async def _from_compromised_primary(self, candidate: Candidate) -> bool:
        if not self._primary.matches(candidate.client_address):
            return False
        # Held once and released by an operator since: it goes through.
        stored = await self._store.verdicts.get(candidate.queue_id)
        return stored is None or stored.verdict not in (Verdict.QUARANTINE, Verdict.REJECT)

    async def pass_(self, run: ReplayRun, *, resync: bool) -> int:
        """One planning pass for run; returns how many items it created or reopened.

        It walks the standby copies from the run's cursor to the last one, a window of
        ``[replay] plan_batch`` rows at a time, and moves the cursor with each batch's items
        in one transaction: each batch costs the same however large the spool is.
        """
        now = self._clock()
        changed = await self._store.replay.reopen_released(run.id, now)
        current = await self._store.replay.get_run(run.id)
        cursor = current.planned_through if current is not None else run.planned_through
        if run.compromise:
            await self._primary.refresh()
            changed += await self._plan_with_holds(run, cursor, now)
        else:
            changed += await self._plan(run, cursor)
        if resync:
            moved = await self._store.replay.changed_after_delivery(_RESYNC_BATCH)
            if moved:
                changed += await self._store.replay.reopen(
                    [item.id for item in moved], run.id, "changed in the webmail after its replay", now
                )
        return changed

    async def _plan(self, run: ReplayRun, cursor: int) -> int:
        """Plan every new copy as pending: each batch is read, planned and written in one go where the
        store runs its transactions, so planning keeps pace beside twenty delivering workers."""
        changed = 0
        while True:
            added, last = await self._store.replay.plan_window(
                run.id, cursor, self._settings.plan_batch, self.plan, self._clock(), self._received
            )
            if last == cursor:
                return changed
            changed += added
            cursor = last

    async def _plan_with_holds(self, run: ReplayRun, cursor: int, now: float) -> int:
        """After a compromise: the primary's own mail is held for review instead of planned as pending."""
        changed = 0
        while True:
            candidates, last = await self._store.replay.candidates_after(cursor, self._settings.plan_batch)
            if last == cursor:
                return changed
            rows: list[tuple[PlannedItem, ItemState, str]] = []
            held: dict[str, Candidate] = {}
            for candidate in candidates:
                if await self._from_compromised_primary(candidate):
                    rows.append((self.plan(candidate), ItemState.HELD, COMPROMISE_REASON))
                    held[candidate.queue_id] = candidate
                else:
                    rows.append((self.plan(candidate), ItemState.PENDING, ""))
            # planned_at is when each batch is planned
            changed += await self._store.replay.add_items(run.id, rows, self._clock(), planned_through=last)
            cursor = last
            for queue_id, candidate in held.items():
                await hold_message(
                    self._store,
                    queue_id,
                    compromise_verdict(candidate.client_address, now),
                    COMPROMISE_REASON,
                    {"sender": candidate.sender, "subject": candidate.subject, "client": candidate.client_address},
                )
