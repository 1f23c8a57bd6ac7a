"""What each mailbox did lately, for the compromise signals: kept in memory, written in batches.

A mailbox's track (its last hour of sending, its known correspondents and forwarding
targets, the signals still open) is loaded from the store the first time the mailbox is
seen and reset when an admin clears the mailbox. New observations are buffered and
written to the store twice a second; a failed write is kept and retried. The mailbox's
history (its baseline) is read from the store and cached for ten minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from continuity.core.baseline import HOUR, Baseline, ContactKind, ContactObservation, SendEvent, SlidingHour
from continuity.core.signals import MailboxState
from continuity.errors import ContinuityError
from continuity.store.protocol import Store

log = logging.getLogger("continuity.signals")

_BASELINE_TTL = 600.0
_RECENT_IDS = 2000
_FLUSH_INTERVAL = 0.5


@dataclass
class MailboxTrack:
    """What one mailbox did lately, and what it knows."""

    hour: SlidingHour
    contacts: set[str]
    forwards: set[str]
    open: set[str]
    cleared_at: float
    recent_ids: deque[str] = field(default_factory=lambda: deque(maxlen=_RECENT_IDS))
    baseline: Baseline = field(default_factory=Baseline)
    baseline_at: float = -_BASELINE_TTL


class SignalLedger:
    """Per-mailbox tracks and the buffered observations behind them."""

    def __init__(self, store: Store, history_days: int, clock: Callable[[], float]) -> None:
        self._store = store
        self._history = history_days * 86400.0
        self._clock = clock
        self._tracks: dict[str, MailboxTrack] = {}
        self._sends: list[tuple[str, SendEvent]] = []
        self._contacts: list[ContactObservation] = []
        self._bounces: list[tuple[str, float, str]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    def start(self) -> None:
        """Start writing observations in the background."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="signals-flush")

    async def stop(self) -> None:
        """Stop the background writer and write what is buffered."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        with contextlib.suppress(ContinuityError):
            await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL)
            try:
                await self.flush()
            except ContinuityError as exc:
                log.warning("could not write the signals' observations (will retry): %s", exc)

    async def flush(self) -> None:
        """Write buffered sends, correspondents and bounces."""
        async with self._write_lock:
            sends, self._sends = self._sends, []
            contacts, self._contacts = self._contacts, []
            bounces, self._bounces = self._bounces, []
            try:
                if sends:
                    await self._store.signals.add_sends(sends)
                if contacts:
                    await self._store.signals.add_contacts(contacts)
                if bounces:
                    await self._store.signals.add_bounces(bounces)
            except ContinuityError:
                self._sends[:0], self._contacts[:0], self._bounces[:0] = sends, contacts, bounces
                raise

    def note_send(self, mailbox: str, event: SendEvent) -> None:
        """Remember a message the mailbox sent (for its history)."""
        self._sends.append((mailbox, event))

    def note_contact(self, observation: ContactObservation) -> None:
        """Remember a correspondent or forwarding target."""
        self._contacts.append(observation)

    def note_bounces(self, mailbox: str, at: float, recipients: list[str]) -> None:
        """Remember hard bounces of the mailbox's mail."""
        self._bounces.extend((mailbox, at, recipient) for recipient in recipients)

    def loaded(self, mailbox: str) -> MailboxTrack | None:
        """The mailbox's track if it is in memory (without loading it)."""
        return self._tracks.get(mailbox)

    async def track(self, mailbox: str) -> tuple[MailboxTrack, MailboxState]:
        """The mailbox's track, loaded on first use and reset when an admin cleared it meanwhile."""
        signals = self._store.signals
        state = await signals.state(mailbox)
        now = self._clock()
        track = self._tracks.get(mailbox)
        if track is None:
            since = max(now - HOUR, state.cleared_at)
            hour = SlidingHour()
            for event in await signals.recent_sends(mailbox, since):
                hour.add(event)
            for moment in await signals.recent_bounces(mailbox, since):
                hour.add_bounces(moment, 1)
            track = MailboxTrack(
                hour=hour,
                contacts=set(await signals.contacts(mailbox, (ContactKind.SENT, ContactKind.RECEIVED))),
                forwards=set(await signals.contacts(mailbox, (ContactKind.FORWARD,))),
                open={item.signal.dedupe for item in await signals.list(10_000, mailbox, open_only=True)},
                cleared_at=state.cleared_at,
            )
            self._tracks[mailbox] = track
        elif state.cleared_at > track.cleared_at:
            track.hour.forget_before(state.cleared_at)
            track.open.clear()
            track.cleared_at = state.cleared_at
        return track, state

    async def baseline(self, mailbox: str, track: MailboxTrack) -> Baseline:
        """The mailbox's sending history as a baseline (cached for ten minutes)."""
        now = self._clock()
        if time.monotonic() - track.baseline_at < _BASELINE_TTL:
            return track.baseline
        until = (int((now - HOUR) // HOUR)) * HOUR
        hours = await self._store.signals.hourly(mailbox, now - self._history, until)
        track.baseline = Baseline.from_hours(hours, self._history / 86400.0)
        track.baseline_at = time.monotonic()
        return track.baseline
