"""IMAP checks of sampled messages on the primary: hidden rules and mail sent behind the user's back.

Two questions, asked for a sample of the mail flow (``[signals] imap_sample_rate``):

* a message the primary relayed for a mailbox: is it in the mailbox's Sent Items a minute
  later? A stolen password used over SMTP, or an attacker who deletes what they sent,
  leaves no copy there;
* a message the primary received for a mailbox: is it still in the Inbox seconds after
  delivery? A hidden inbox rule moves it to another folder (RSS Feeds, Archive) or deletes
  it, so the user never sees the real invoice thread.

A check that cannot reach the primary is logged and dropped (it proves nothing either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from continuity.adapters.imap_search import ImapAccess, ImapCheckError, locate
from continuity.core.signals import Signal, SignalKind
from continuity.services.signals import SignalService

log = logging.getLogger("continuity.signals")

_QUEUE_LIMIT = 1000
_INBOX = "INBOX"
# An inbound message found in no folder is looked for once more this many inbox delays later
# (it may not have been delivered yet).
_RETRY_FACTOR = 3.0


class CheckKind(StrEnum):
    """Which question a check asks."""

    SENT = "sent"
    INBOX = "inbox"


@dataclass(frozen=True, slots=True)
class Check:
    """One sampled message to look for."""

    kind: CheckKind
    mailbox: str
    message_id: str
    queue_id: str
    queued_at: float
    attempt: int = 0
    waits: int = 0


Locator = Callable[[ImapAccess, str, str, Sequence[str] | None], Awaitable[tuple[str, ...]]]
# Whether a sampled inbound message has reached the primary: True (check now), False (not yet,
# look again later), None (it never will: the check is dropped).
Readiness = Callable[[str], Awaitable[bool | None]]
# How often an inbound check waits for its message to reach the primary before it is dropped.
_MAX_WAITS = 10


class MailboxChecks:
    """Schedules and runs the IMAP checks."""

    def __init__(
        self,
        signals: SignalService,
        access: ImapAccess,
        *,
        sample_rate: float,
        sent_delay: float,
        inbox_delay: float,
        sent_folders: Sequence[str],
        concurrency: int,
        domains: frozenset[str],
        locator: Locator = locate,
        ready: Readiness | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._signals = signals
        self._access = access
        self._rate = sample_rate
        self._sent_delay = sent_delay
        self._inbox_delay = inbox_delay
        self._sent_folders = tuple(sent_folders)
        self._domains = domains
        self._locate = locator
        self._ready = ready
        self._rng = rng or random.Random()
        self._due: list[tuple[float, int, Check]] = []
        self._counter = itertools.count()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self.completed = 0

    def _sampled(self, mailbox: str, message_id: str) -> bool:
        if not message_id or "@" not in mailbox or mailbox.rpartition("@")[2] not in self._domains:
            return False
        return self._rate >= 1.0 or self._rng.random() < self._rate

    def _schedule(self, check: Check, delay: float) -> None:
        if len(self._due) >= _QUEUE_LIMIT:
            return
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._counter), check))
        self._wake.set()

    def sample_sent(self, mailbox: str, message_id: str, queue_id: str) -> None:
        """Maybe check later that this relayed message is in the mailbox's Sent Items."""
        if self._sampled(mailbox, message_id):
            self._schedule(Check(CheckKind.SENT, mailbox, message_id, queue_id, time.time()), self._sent_delay)

    def sample_inbound(self, mailbox: str, message_id: str, queue_id: str) -> None:
        """Maybe check in a few seconds that this delivered message is still in the Inbox."""
        if self._sampled(mailbox, message_id):
            self._schedule(Check(CheckKind.INBOX, mailbox, message_id, queue_id, time.time()), self._inbox_delay)

    @property
    def pending(self) -> int:
        """Checks waiting or running."""
        return len(self._due) + len(self._running)

    async def run(self) -> None:
        """Run checks as they fall due, until cancelled."""
        try:
            while True:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    _at, _n, check = heapq.heappop(self._due)
                    task = asyncio.create_task(self._run_one(check))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                self._wake.clear()
                timeout = max(0.05, self._due[0][0] - now) if self._due else 60.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _run_one(self, check: Check) -> None:
        async with self._slots:
            try:
                await self.check(check)
            except ImapCheckError as exc:
                log.warning(
                    "IMAP check (%s) of %s for %s failed: %s", check.kind.value, check.message_id, check.mailbox, exc
                )
            except ValueError as exc:
                log.info("IMAP check of %s skipped: %s", check.mailbox, exc)
            finally:
                self.completed += 1

    async def check(self, check: Check) -> Signal | None:
        """Ask the check's question now; report a signal when the answer is suspicious."""
        if check.kind is CheckKind.SENT:
            found = await self._locate(self._access, check.mailbox, check.message_id, self._sent_folders)
            if found:
                return None
            return await self._report(
                check,
                SignalKind.SENT_ITEMS_MISSING,
                "mail relayed for the mailbox is not in its Sent Items (sent behind the user's back, or deleted)",
                (
                    f"Message-ID {check.message_id} relayed as {check.queue_id}",
                    f"not found in {', '.join(self._sent_folders)} {time.time() - check.queued_at:.0f}s later",
                ),
            )
        if self._ready is not None:
            ready = await self._ready(check.queue_id)
            if ready is None:
                return None
            if not ready:
                if check.waits < _MAX_WAITS:
                    self._schedule(dataclasses.replace(check, waits=check.waits + 1), self._inbox_delay)
                return None
        in_inbox = await self._locate(self._access, check.mailbox, check.message_id, (_INBOX,))
        if in_inbox:
            return None
        elsewhere = await self._locate(self._access, check.mailbox, check.message_id, None)
        elsewhere = tuple(folder for folder in elsewhere if folder.upper() != _INBOX)
        if not elsewhere and check.attempt == 0:
            self._schedule(dataclasses.replace(check, attempt=1), self._inbox_delay * _RETRY_FACTOR)
            return None
        where = f"moved to {', '.join(elsewhere)}" if elsewhere else "found in no folder (deleted)"
        return await self._report(
            check,
            SignalKind.INBOX_VANISHED,
            f"inbound mail left the Inbox within seconds ({where}): a hidden inbox rule",
            (
                f"Message-ID {check.message_id} (stored here as {check.queue_id})",
                f"{where} {time.time() - check.queued_at:.0f}s after delivery",
            ),
            key=elsewhere[0] if elsewhere else "deleted",
        )

    async def _report(
        self, check: Check, kind: SignalKind, summary: str, evidence: tuple[str, ...], key: str = ""
    ) -> Signal | None:
        signal = Signal(
            kind,
            check.mailbox,
            self._signals.responder.policy.severity(kind),
            summary,
            evidence,
            time.time(),
            "imap",
            check.queue_id,
            key,
        )
        stored = await self._signals.report(signal)
        return stored.signal if stored is not None else None
