"""Flow control of the replay: how many deliveries may be in flight and how fast, so the primary is never flooded.

Additive increase, multiplicative decrease (the TCP way), on three signals:

* the primary throttles (IMAP "NO [LIMIT] server busy", SMTP 421/451/452): the window of
  deliveries in flight halves and everything pauses, the pause doubling while throttling
  lasts (up to a maximum);
* latency rises: when the smoothed delivery latency exceeds ``latency_factor`` times its
  baseline, the window shrinks by a quarter (at most once per smoothed latency);
* deliveries succeed: the window grows by one per window's worth of successes, up to the
  configured concurrency.

A token bucket caps the rate at the configured messages per second. Pure: the service
passes the time in and does the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

_ALPHA = 0.2
_WARMUP = 5
_BASELINE_DRIFT = 0.01


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """The ceilings and reactions (from [replay])."""

    concurrency: int
    rate: float
    pause: float
    pause_max: float
    latency_factor: float


class FlowControl:
    """The current window, pause and rate slot."""

    def __init__(self, limits: FlowLimits) -> None:
        self.limits = limits
        self.window = float(limits.concurrency)
        self.paused_until = 0.0
        self.throttles = 0
        self.slowdowns = 0
        self.latency = 0.0
        self.baseline = 0.0
        self._samples = 0
        self._pause = 0.0
        self._next_slot = 0.0
        self._last_slowdown = 0.0
        self.last_event = ""

    @property
    def permits(self) -> int:
        """Deliveries allowed in flight now."""
        return max(1, int(self.window))

    def delay(self, now: float) -> float:
        """Seconds to wait before the next delivery may start (pause and rate); reserves the slot."""
        start = max(now, self.paused_until)
        if self.limits.rate > 0:
            start = max(start, self._next_slot)
            self._next_slot = start + 1.0 / self.limits.rate
        return start - now

    def succeeded(self, latency: float, now: float) -> None:
        """A delivery went through in latency seconds."""
        self._pause = 0.0
        self._samples += 1
        self.latency = latency if self._samples == 1 else (1 - _ALPHA) * self.latency + _ALPHA * latency
        if self._samples <= _WARMUP:
            self.baseline = self.latency if self._samples == _WARMUP else 0.0
            self.window = min(float(self.limits.concurrency), self.window + 1.0 / self.window)
            return
        if self.latency < self.baseline:
            self.baseline = self.latency
        slow = self.latency > self.baseline * self.limits.latency_factor
        if slow and now - self._last_slowdown >= self.latency:
            self._last_slowdown = now
            self.window = max(1.0, self.window * 0.75)
            self.slowdowns += 1
            self.last_event = (
                f"latency {self.latency * 1000:.0f} ms over {self.limits.latency_factor:g}x its baseline "
                f"{self.baseline * 1000:.0f} ms: {self.permits} in flight"
            )
        elif not slow:
            self.window = min(float(self.limits.concurrency), self.window + 1.0 / self.window)
        # A primary that stays slower for good becomes the new normal, slowly.
        self.baseline += (self.latency - self.baseline) * _BASELINE_DRIFT

    def throttled(self, now: float, detail: str) -> float:
        """The primary asked to slow down; returns the pause (seconds) now in force."""
        self.throttles += 1
        self.window = max(1.0, self.window / 2)
        self._pause = self.limits.pause if self._pause == 0 else min(self.limits.pause_max, self._pause * 2)
        self.paused_until = max(self.paused_until, now + self._pause)
        self.last_event = f"throttled ({detail[:120]}): pausing {self._pause:g}s, {self.permits} in flight"
        return self._pause

    def describe(self) -> str:
        """One sentence for status output."""
        rate = f"{self.limits.rate:g}/s" if self.limits.rate > 0 else "unlimited"
        text = (
            f"{self.permits} of {self.limits.concurrency} in flight, rate cap {rate}, "
            f"{self.throttles} throttle(s), {self.slowdowns} slowdown(s)"
        )
        return text + (f"; last: {self.last_event}" if self.last_event else "")
