"""Keeps the standby mailboxes' rolling window: prunes mirrored and gateway-relayed copies, and old history.

The feeds fill the standby mailboxes with recent mail so that users see it during a
failover; those copies (states ``mirrored`` and ``relayed``) are mail the primary has, so
after ``[feeds] window_days`` they are deleted, with their bodies when no other message
shares them. Mail still waiting for replay, held or quarantined is never touched. The
signals' sending history older than ``[signals] history_days`` goes too, and the
correspondents a mailbox has not dealt with for a year.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from continuity.errors import ContinuityError
from continuity.store.protocol import Store

log = logging.getLogger("continuity.feeds")

_DAY = 86400.0
# Correspondents not seen for this long count as never seen again.
_CONTACT_MEMORY = 365 * _DAY


class MirrorWindow:
    """Prunes what fell out of the window, every interval."""

    def __init__(
        self,
        store: Store,
        window_days: float,
        history_days: float,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._window = window_days * _DAY
        self._history = history_days * _DAY
        self._interval = interval
        self._clock = clock

    async def prune_once(self) -> int:
        """Prune everything due now; returns how many messages were removed."""
        now = self._clock()
        removed = bodies = 0
        while True:
            report = await self._store.feeds.prune_window(now - self._window)
            removed += report.messages
            bodies += report.bodies
            if report.messages == 0:
                break
        history = await self._store.signals.prune(now - self._history, now - _CONTACT_MEMORY)
        if removed or history:
            log.info(
                "mailbox window: pruned %d mirrored message(s) older than %g days (%d bodies), %d history row(s)",
                removed,
                self._window / _DAY,
                bodies,
                history,
            )
        return removed

    async def run(self) -> None:
        """Prune until cancelled."""
        while True:
            try:
                await self.prune_once()
            except ContinuityError as exc:
                log.error("pruning the mailbox window failed, retrying later: %s", exc)
            await asyncio.sleep(self._interval)
