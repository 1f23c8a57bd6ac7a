"""Flow control of the replay per mailbox: each mailbox within its own rate, a throttled mailbox paused alone.

Exchange throttles IMAP per mailbox (each user's budget): when one mailbox's budget runs
out, Exchange Online answers ``NO``/``BAD`` with "Request is throttled. Suggested Backoff
Time: N milliseconds" (or the ``[THROTTLED]`` response code) and the other mailboxes go
on. So beside the global window (continuity.core.replay_flow) every mailbox has:

* a rate slot (``mailbox_rate`` messages per second, 0 for no cap), reserved per delivery;
* a pause after a throttling answer: the server's suggested backoff when it gave one,
  otherwise ``pause`` doubling while throttling lasts, never more than ``pause_max``;
* the deliveries it made, from which the observed per-mailbox rate and the predicted
  duration of the rest of the run follow.

A generic "server busy" answer (``[LIMIT]``, "Server Unavailable") is the whole server's
trouble and stays with the global flow control. Pure: the caller passes the time in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Exchange Online: "Request is throttled. Suggested Backoff Time: 1234 milliseconds".
# Possessive runs: linear on a reply of spaces (and only the first 1000 characters are read).
_BACKOFF_HINT = re.compile(r"suggested\s++backoff\s++time\s*+:?\s*+(\d{1,9})\s*+(milliseconds|ms|seconds|s)\b", re.I)
_MAILBOX_THROTTLE = re.compile(r"\[THROTTLED\]|request is throttled|suggested\s++backoff\s++time", re.I)


def mailbox_throttle(text: str) -> bool:
    """Whether a server answer is a per-mailbox throttle (Exchange's user budget), not a server-wide busy."""
    return bool(_MAILBOX_THROTTLE.search(text[:1000]))


def suggested_backoff(text: str) -> float | None:
    """The backoff the server suggested in text, in seconds; None when it named none."""
    found = _BACKOFF_HINT.search(text[:1000])
    if found is None:
        return None
    amount = int(found.group(1))
    return amount / 1000 if found.group(2).lower() in ("milliseconds", "ms") else float(amount)


def predict_duration(
    remaining: Mapping[str, float], rate: float | None, lanes: int, waits: Mapping[str, float] | None = None
) -> float | None:
    """Predicted seconds until remaining (copies left per mailbox) are delivered; None when rate is unknown.

    Each mailbox takes its copies at rate (messages per second into one mailbox) after its
    wait (a throttling pause); ``lanes`` mailboxes go on at once (the global concurrency).
    The run lasts at least its longest mailbox and at least the sum spread over the lanes.
    """
    left = {mailbox: count for mailbox, count in remaining.items() if count > 0}
    if not left:
        return 0.0
    if rate is None or rate <= 0:
        return None
    durations = [(waits or {}).get(mailbox, 0.0) + count / rate for mailbox, count in left.items()]
    return max(max(durations), math.fsum(durations) / max(1, lanes))


def observed_mailbox_rate(delivered: int, elapsed: float, lanes: int, mailboxes: int) -> float | None:
    """Messages per second one mailbox took, from a run's deliveries so far; None before there are a few.

    The run's throughput was spread over the mailboxes replayed at once: the lanes, or fewer
    when fewer mailboxes had work.
    """
    if delivered < 3 or elapsed <= 0:
        return None
    return delivered / elapsed / max(1, min(lanes, mailboxes))


@dataclass(frozen=True, slots=True)
class MailboxLimits:
    """Per-mailbox ceilings and reactions (from [replay])."""

    rate: float
    pause: float
    pause_max: float


@dataclass(slots=True)
class _Mailbox:
    next_slot: float = 0.0
    paused_until: float = 0.0
    pause: float = 0.0
    throttles: int = 0
    delivered: int = 0
    first_at: float = 0.0
    last_at: float = 0.0


class MailboxFlows:
    """The rate slots, pauses and observed rates of every mailbox of a run."""

    def __init__(self, limits: MailboxLimits) -> None:
        self.limits = limits
        self._mailboxes: dict[str, _Mailbox] = {}
        self.throttles = 0
        self.last_event = ""

    def _get(self, mailbox: str) -> _Mailbox:
        state = self._mailboxes.get(mailbox)
        if state is None:
            state = self._mailboxes[mailbox] = _Mailbox()
        return state

    def paused(self, mailbox: str, now: float) -> bool:
        """Whether mailbox is paused after a throttling answer (its work should wait)."""
        state = self._mailboxes.get(mailbox)
        return state is not None and state.paused_until > now

    def delay(self, mailbox: str, now: float) -> float:
        """Seconds to wait before mailbox's next delivery may start (its pause and rate); reserves the slot."""
        state = self._get(mailbox)
        start = max(now, state.paused_until)
        if self.limits.rate > 0:
            start = max(start, state.next_slot)
            state.next_slot = start + 1.0 / self.limits.rate
        return start - now

    def succeeded(self, mailbox: str, now: float) -> None:
        """A delivery into mailbox went through."""
        state = self._get(mailbox)
        state.pause = 0.0
        if state.delivered == 0:
            state.first_at = now
        state.delivered += 1
        state.last_at = now

    def throttled(self, mailbox: str, now: float, detail: str) -> float:
        """Mailbox was throttled; returns its pause (seconds): the suggested backoff, or doubling pauses."""
        state = self._get(mailbox)
        state.throttles += 1
        self.throttles += 1
        hint = suggested_backoff(detail)
        if hint is not None:
            pause = min(max(hint, 0.01), self.limits.pause_max)
        else:
            pause = self.limits.pause if state.pause == 0 else min(self.limits.pause_max, state.pause * 2)
        state.pause = pause
        state.paused_until = max(state.paused_until, now + pause)
        # Nothing starts in the pause, and the rate starts afresh after it.
        state.next_slot = max(state.next_slot, state.paused_until)
        source = "as the server suggested" if hint is not None else "no backoff suggested"
        self.last_event = f"{mailbox} throttled: pausing it {pause:g}s ({source})"
        return pause

    def observed_rate(self) -> float | None:
        """Messages per second one mailbox takes, the median over mailboxes with a few deliveries; None before."""
        rates = sorted(
            (state.delivered - 1) / (state.last_at - state.first_at)
            for state in self._mailboxes.values()
            if state.delivered >= 3 and state.last_at > state.first_at
        )
        return rates[len(rates) // 2] if rates else None

    def predicted_seconds(self, remaining: Mapping[str, float], lanes: int, now: float) -> float | None:
        """predict_duration at the observed per-mailbox rate (mailbox_rate before one is observed), after pauses."""
        rate = self.observed_rate() or (self.limits.rate if self.limits.rate > 0 else None)
        waits = {mailbox: max(0.0, state.paused_until - now) for mailbox, state in self._mailboxes.items()}
        return predict_duration(remaining, rate, lanes, waits)

    def describe(self) -> str:
        """One sentence for status output."""
        rate = f"{self.limits.rate:g}/s per mailbox" if self.limits.rate > 0 else "no per-mailbox rate cap"
        text = f"{rate}, {self.throttles} mailbox throttle(s)"
        return text + (f"; last: {self.last_event}" if self.last_event else "")
