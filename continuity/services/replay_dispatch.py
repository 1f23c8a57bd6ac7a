"""Dispatching claimed work to the replay's workers: ``concurrency`` workers, each with its own connection.

A worker claims a batch (durably marked ``delivering``) of one mailbox, preferring the
mailbox its IMAP session is already logged in to, and never more than
``connections_per_mailbox`` workers on one mailbox, and none on a mailbox that waits out
a throttling pause (continuity.core.replay_mailbox_flow); SMTP batches may mix mailboxes. A
worker ends when nothing is due and the run's planning, which goes on beside the first deliveries, is
done.

Which mailboxes have IMAP items due is listed from the journal once and then kept: a
mailbox leaves the list when a claim for it comes back short (nothing more is due there
now), and the list is read again when it is empty or older than ``_RELIST_SECONDS`` (so
deferred items that come due meanwhile are found). Listing reads every open item of the
run; doing it on every claim made a large replay cost the square of its size.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from continuity.adapters.imap_append import MailboxSession
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.adapters.smtp_kept_session import SmtpSession
from continuity.config.settings import Settings
from continuity.core.replay_plan import Channel
from continuity.core.replay_records import JournalItem, ReplayRun
from continuity.services.replay_delivery import DeliveryContext, imap_batch, smtp_batch
from continuity.store.protocol import Store

_RELIST_SECONDS = 5.0  # the list of mailboxes with due items is read again at least this often


class DueMailboxes:
    """The mailboxes with due IMAP items of one run, in journal order, as last listed (see the module docstring)."""

    def __init__(self, store: Store, run_id: int, clock: Callable[[], float]) -> None:
        self._store = store
        self._run_id = run_id
        self._clock = clock
        self._mailboxes: list[str] = []
        self._listed_at = -math.inf

    async def current(self) -> list[str]:
        """The mailboxes believed to have due items (read from the journal when empty or stale)."""
        now = self._clock()
        if not self._mailboxes or now - self._listed_at >= _RELIST_SECONDS:
            listed = await self._store.replay.due_mailboxes(Channel.IMAP, now, self._run_id)
            self._mailboxes = [mailbox for mailbox, _ in listed]
            self._listed_at = now
        return list(self._mailboxes)

    def exhausted(self, mailbox: str) -> None:
        """A claim for mailbox came back short: nothing more is due there now."""
        if mailbox in self._mailboxes:
            self._mailboxes.remove(mailbox)


_PLANNING_POLL = 0.02  # seconds between claims while the run is still being planned


class Dispatcher:
    """Runs the workers of one delivery pass."""

    def __init__(
        self, settings: Settings, store: Store, smtp: SmtpDelivery | None, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._store = store
        self._smtp = smtp
        self._clock = clock
        self._lock = asyncio.Lock()
        self._busy: dict[str, int] = {}
        # Whether a mailbox waits out a throttling pause (its own flow control): not claimed meanwhile.
        self._paused: Callable[[str], bool] | None = None

    async def deliver(
        self,
        run: ReplayRun,
        context: DeliveryContext,
        channels: list[Channel],
        planning: asyncio.Future[int] | None = None,
    ) -> int:
        """Deliver every due item of run, and those planning still adds; returns how many were delivered."""
        due = DueMailboxes(self._store, run.id, self._clock)
        self._paused = lambda mailbox: context.mailboxes.paused(mailbox, time.monotonic())
        workers = [
            self._worker(context, run, channels, due, planning) for _ in range(self._settings.replay.concurrency)
        ]
        await asyncio.gather(*workers)
        return context.delivered

    async def _claim(
        self, run: ReplayRun, channels: list[Channel], due: DueMailboxes, preferred: str | None
    ) -> tuple[Channel, str, list[JournalItem]] | None:
        replay = self._settings.replay
        async with self._lock:
            now = self._clock()
            for channel in channels:
                if channel is Channel.SMTP:
                    items = await self._store.replay.claim(channel, None, replay.batch, now, run.id)
                    if items:
                        return channel, "", items
                    continue
                listed = await due.current()
                free = [
                    mailbox
                    for mailbox in listed
                    if self._busy.get(mailbox, 0) < replay.connections_per_mailbox
                    and not (self._paused is not None and self._paused(mailbox))
                ]
                if not free:
                    continue
                mailbox = preferred if preferred in free else free[0]
                items = await self._store.replay.claim(channel, mailbox, replay.batch, now, run.id)
                if len(items) < replay.batch:
                    due.exhausted(mailbox)
                if items:
                    self._busy[mailbox] = self._busy.get(mailbox, 0) + 1
                    return channel, mailbox, items
        return None

    async def _more_for_busy_mailboxes(self, due: DueMailboxes) -> bool:
        return any(self._busy.values()) and bool(await due.current())

    async def _worker(
        self,
        context: DeliveryContext,
        run: ReplayRun,
        channels: list[Channel],
        due: DueMailboxes,
        planning: asyncio.Future[int] | None,
    ) -> None:
        imap_session: MailboxSession | None = None
        smtp_session: SmtpSession | None = None
        primary = self._settings.primary
        try:
            while not context.stopping():
                claimed = await self._claim(run, channels, due, imap_session.mailbox if imap_session else None)
                if claimed is None:
                    if planning is not None and not planning.done():
                        await asyncio.sleep(_PLANNING_POLL)  # more items are on their way
                        continue
                    if await self._more_for_busy_mailboxes(due):
                        await asyncio.sleep(0.05)
                        continue
                    return
                channel, mailbox, items = claimed
                if channel is Channel.SMTP:
                    assert self._smtp is not None
                    if smtp_session is None:
                        smtp_session = self._smtp.session(primary.host, primary.smtp_port)
                    await smtp_batch(context, smtp_session, items)
                    continue
                try:
                    imap_session = await imap_batch(context, imap_session, mailbox, items)
                finally:
                    self._busy[mailbox] -= 1
        finally:
            if imap_session is not None:
                await imap_session.close()
            if smtp_session is not None:
                await smtp_session.close()
