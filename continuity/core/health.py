"""The health policy: from each monitor cycle's probe results to a verdict on the primary, with hysteresis.

A cycle *fails* when the summed weights of the probes that found their service down
reach the outage threshold; the default weights make "SMTP down plus one health URL
down" an outage while one flaky URL (or IMAP alone) is not. The primary is *down* after
``failures_to_down`` consecutive failed cycles that span at least ``down_after``
seconds, and *up* again after ``successes_to_up`` consecutive good cycles that span at
least ``hold_down`` seconds. Spans are counted in cycles of the configured ``interval``
(``down_after`` at 15 s is four intervals, so five cycles), never compared with clock
readings: a span of 59.9 s between cycles 15 s apart must not miss 60 s and cost a
whole cycle more.

An SMTP ``421`` is the primary announcing maintenance: such a cycle counts neither for
nor against it and both streaks restart, unless the other probes alone reach the outage
threshold (one probe never outvotes the rest) or the announcement has lasted longer
than ``maintenance_limit`` since the SMTP probe last found the primary up (anyone
answering 421 on the dead primary's address, or an overloaded Exchange, would otherwise
prevent a failover for ever). Past that limit the 421 counts as SMTP down.

What the tracker remembers (:class:`HealthMemory`) is stored after every cycle, so a
restart of the monitor resumes the streaks (the cycles it missed do not count).

Why these defaults (docs/failover.md says more):

* ``down_after`` = 60 s: an Exchange DAG switchover or a transport service restart is
  over in about 30 s, so 60 s leaves a twofold margin against failing over for them,
  while sending MTAs first retry after about 5 minutes (Postfix ``minimal_backoff_time``
  300 s): a failover within a minute is done before most senders even retry.
* ``failures_to_down`` = 3: at long probe intervals (30 s+) one lost packet or one slow
  answer must not count as a minute of outage; three independent observations do.
* ``successes_to_up`` = 3 and ``hold_down`` = 600 s: a restarted Exchange brings its
  services up one by one over minutes and a crashing one comes back and falls again;
  switching back is expensive (a second DNS change, a replay), so the primary must be
  continuously healthy for ten minutes first.
* ``suspect_after`` = 2: one failed cycle is noise; SUSPECT (which notifies) needs two.
* ``maintenance_limit`` = 1800 s: Exchange's own maintenance (a cumulative update with
  its restarts) is announced for well under an hour, and longer planned work is what
  ``continuity pause`` is for; senders retry for days, so half an hour of mail held back
  by a false announcement costs little, while for ever would cost everything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult

DEFAULT_WEIGHTS: Mapping[ProbeKind, float] = {
    ProbeKind.SMTP: 1.0,
    ProbeKind.IMAP: 0.5,
    ProbeKind.HTTPS: 0.25,
    ProbeKind.CANARY: 0.5,
}


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """When the primary counts as down and when as up again; see the module docstring for the defaults."""

    failures_to_down: int = 3
    down_after: float = 60.0
    successes_to_up: int = 3
    hold_down: float = 600.0
    suspect_after: int = 2
    outage_threshold: float = 1.25
    weights: Mapping[ProbeKind, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # Seconds between monitor cycles: spans are counted in cycles of this length.
    interval: float = 15.0
    maintenance_limit: float = 1800.0

    def weight(self, kind: ProbeKind) -> float:
        """The weight of one probe of this kind."""
        return self.weights.get(kind, 0.0)

    @property
    def cycles_to_down(self) -> int:
        """Consecutive failed cycles that make the primary down: failures_to_down, spanning down_after."""
        return max(self.failures_to_down, _intervals(self.down_after, self.interval) + 1)

    @property
    def cycles_to_up(self) -> int:
        """Consecutive good cycles that make the primary up: successes_to_up, spanning hold_down."""
        return max(self.successes_to_up, _intervals(self.hold_down, self.interval) + 1)

    @property
    def resume_within(self) -> float:
        """How old the stored memory may be for a restarted monitor to resume it (a restart, not a long stop)."""
        return max(300.0, 4 * self.interval)

    def minimum_detection_time(self, interval: float | None = None) -> float:
        """The shortest time from the first failed cycle to the verdict DOWN at this probe interval."""
        interval = self.interval if interval is None else interval
        intervals = max(self.failures_to_down - 1, _intervals(self.down_after, interval))
        return intervals * interval


def _intervals(span: float, interval: float) -> int:
    """Whole intervals needed to cover span."""
    return math.ceil(span / interval - 1e-9)


def _reached(span: float, wanted: float, policy: HealthPolicy) -> bool:
    """A span counted in cycles also reached in time, give or take half an interval of timing jitter.

    Only guards against cycles observed faster than the interval; at the interval the
    cycle count decides.
    """
    return span >= wanted - policy.interval / 2


@dataclass(frozen=True, slots=True)
class HealthMemory:
    """What the tracker needs to carry on where it was: stored after every cycle, read at start."""

    failed_streak: int = 0
    failed_since: float = 0.0
    healthy_streak: int = 0
    healthy_since: float = 0.0
    # When the primary began announcing maintenance (SMTP 421) without its SMTP probe up since; None if not.
    maintenance_since: float | None = None
    last_cycle_at: float | None = None


class CycleHealth(StrEnum):
    """How one monitor cycle looked."""

    HEALTHY = "healthy"
    # Some probe failed, below the outage threshold.
    DEGRADED = "degraded"
    FAILED = "failed"
    MAINTENANCE = "maintenance"


class HealthVerdict(StrEnum):
    """What the policy concludes about the primary after a cycle."""

    # Good cycles, but not yet for successes_to_up cycles and hold_down seconds.
    RECOVERING = "recovering"
    # Stably healthy: successes_to_up good cycles spanning hold_down.
    UP = "up"
    # Failed cycles, but not yet enough of them for long enough.
    FAILING = "failing"
    # failures_to_down failed cycles spanning down_after.
    DOWN = "down"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class HealthAssessment:
    """The verdict after one cycle, with the numbers behind it."""

    verdict: HealthVerdict
    cycle: CycleHealth
    down_weight: float
    failed_streak: int
    failing_for: float
    healthy_streak: int
    healthy_for: float
    down_probes: tuple[str, ...]
    policy: HealthPolicy
    # True when a probe announced maintenance (SMTP 421) in this cycle.
    maintenance_announced: bool = False
    # Seconds since the primary began announcing maintenance (its SMTP probe not up since).
    maintenance_for: float = 0.0
    # True when this cycle's announcement was not believed (past maintenance_limit).
    maintenance_expired: bool = False

    @property
    def suspect(self) -> bool:
        """True when enough consecutive cycles failed to suspect an outage."""
        return self.failed_streak >= self.policy.suspect_after

    @property
    def stably_healthy_cycles(self) -> bool:
        """True when enough consecutive good cycles were seen to clear a suspicion."""
        return self.healthy_streak >= self.policy.successes_to_up

    def _seen(self) -> str:
        policy = self.policy
        down = ""
        if self.down_probes:
            comparison = " >=" if self.cycle is CycleHealth.FAILED else " <"
            down = (
                f"{', '.join(self.down_probes)} down (weight {self.down_weight:g}{comparison} "
                f"{policy.outage_threshold:g})"
            )
        if self.cycle is CycleHealth.MAINTENANCE:
            seen = (
                f"primary announces maintenance (SMTP 421) for {self.maintenance_for:.0f}s "
                f"(believed up to {policy.maintenance_limit:g}s)"
            )
            return f"{seen}; {down}" if down else seen
        if self.maintenance_announced and self.cycle is CycleHealth.FAILED and not self.maintenance_expired:
            return f"{down}: the other probes outweigh the SMTP 421 (maintenance announced)"
        if self.maintenance_announced and self.maintenance_expired:
            return (
                f"{down}: the SMTP 421 has lasted {self.maintenance_for:.0f}s, longer than the "
                f"{policy.maintenance_limit:g}s maintenance is believed, and counts as down"
            )
        return down or "every probe up"

    def sentence(self) -> str:
        """What the cycle saw, in words."""
        policy = self.policy
        seen = self._seen()
        if self.verdict is HealthVerdict.DOWN:
            return f"{seen}; {self.failed_streak} failed cycles over {self.failing_for:.0f}s: primary is down"
        if self.verdict is HealthVerdict.FAILING:
            return (
                f"{seen}; {self.failed_streak} failed cycle(s) over {self.failing_for:.0f}s "
                f"(down needs {policy.cycles_to_down} over {policy.down_after:g}s)"
            )
        if self.verdict is HealthVerdict.UP:
            return f"{seen}; healthy for {self.healthy_streak} cycles over {self.healthy_for:.0f}s: primary is up"
        if self.verdict is HealthVerdict.RECOVERING:
            return (
                f"{seen}; healthy for {self.healthy_streak} cycle(s) over {self.healthy_for:.0f}s "
                f"(stable needs {policy.cycles_to_up} over {policy.hold_down:g}s)"
            )
        return seen


def classify_cycle(
    results: Sequence[ProbeResult], policy: HealthPolicy, *, maintenance_believed: bool = True
) -> tuple[CycleHealth, float, tuple[str, ...]]:
    """One cycle's class, the summed weight of the probes that were down, and their names.

    A cycle with an announcement of maintenance is MAINTENANCE unless the other probes
    alone make it FAILED; when the announcement is no longer believed it counts as down.
    """
    announced = any(result.outcome is ProbeOutcome.MAINTENANCE for result in results)
    counted = (ProbeOutcome.DOWN,) if maintenance_believed else (ProbeOutcome.DOWN, ProbeOutcome.MAINTENANCE)
    down = [result for result in results if result.outcome in counted]
    weight = round(sum(policy.weight(result.kind) for result in down), 6)
    names = tuple(result.name for result in down)
    if weight >= policy.outage_threshold and down:
        return CycleHealth.FAILED, weight, names
    if announced and maintenance_believed:
        return CycleHealth.MAINTENANCE, weight, names
    if not down:
        return CycleHealth.HEALTHY, 0.0, names
    return CycleHealth.DEGRADED, weight, names


class HealthTracker:
    """Feeds cycles through the policy; remembers the current failed and healthy streaks.

    Time is passed in (``now``, when the cycle started), so the policy runs the same under
    a fake clock.
    """

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self._failed_streak = 0
        self._failed_since = 0.0
        self._healthy_streak = 0
        self._healthy_since = 0.0
        self._maintenance_since: float | None = None
        self._last_cycle_at: float | None = None

    def memory(self) -> HealthMemory:
        """What to store to carry on after a restart."""
        return HealthMemory(
            self._failed_streak,
            self._failed_since,
            self._healthy_streak,
            self._healthy_since,
            self._maintenance_since,
            self._last_cycle_at,
        )

    def resume(self, memory: HealthMemory | None, now: float) -> bool:
        """Carry on from stored memory unless it is older than ``policy.resume_within``; True when resumed."""
        if memory is None or memory.last_cycle_at is None:
            return False
        age = now - memory.last_cycle_at
        if age < 0 or age > self.policy.resume_within:
            return False
        self._failed_streak, self._failed_since = memory.failed_streak, memory.failed_since
        self._healthy_streak, self._healthy_since = memory.healthy_streak, memory.healthy_since
        self._maintenance_since = memory.maintenance_since
        self._last_cycle_at = memory.last_cycle_at
        return True

    def _follow_maintenance(self, announced: bool, results: Sequence[ProbeResult], now: float) -> tuple[float, bool]:
        """Since when maintenance is announced; returns (seconds so far, still believed)."""
        if announced:
            if self._maintenance_since is None:
                self._maintenance_since = now
        elif any(result.kind is ProbeKind.SMTP and result.up for result in results):
            # Only the announcing service itself answering normally ends it: not silence, not a refusal.
            self._maintenance_since = None
        if self._maintenance_since is None:
            return 0.0, True
        lasted = now - self._maintenance_since
        return lasted, lasted < self.policy.maintenance_limit

    def observe(self, results: Sequence[ProbeResult], now: float) -> HealthAssessment:
        """Account for one cycle's results (taken at ``now``) and return the verdict."""
        policy = self.policy
        self._last_cycle_at = now
        announced = any(result.outcome is ProbeOutcome.MAINTENANCE for result in results)
        maintenance_for, believed = self._follow_maintenance(announced, results, now)
        cycle, weight, down = classify_cycle(results, policy, maintenance_believed=believed)
        if cycle is CycleHealth.MAINTENANCE:
            self._failed_streak = self._healthy_streak = 0
        elif cycle is CycleHealth.FAILED:
            self._healthy_streak = 0
            if self._failed_streak == 0:
                self._failed_since = now
            self._failed_streak += 1
        else:
            self._failed_streak = 0
            if self._healthy_streak == 0:
                self._healthy_since = now
            self._healthy_streak += 1
        failing_for = now - self._failed_since if self._failed_streak else 0.0
        healthy_for = now - self._healthy_since if self._healthy_streak else 0.0
        if cycle is CycleHealth.MAINTENANCE:
            verdict = HealthVerdict.MAINTENANCE
        elif self._failed_streak:
            is_down = self._failed_streak >= policy.cycles_to_down and _reached(failing_for, policy.down_after, policy)
            verdict = HealthVerdict.DOWN if is_down else HealthVerdict.FAILING
        else:
            is_up = self._healthy_streak >= policy.cycles_to_up and _reached(healthy_for, policy.hold_down, policy)
            verdict = HealthVerdict.UP if is_up else HealthVerdict.RECOVERING
        return HealthAssessment(
            verdict=verdict,
            cycle=cycle,
            down_weight=weight,
            failed_streak=self._failed_streak,
            failing_for=failing_for,
            healthy_streak=self._healthy_streak,
            healthy_for=healthy_for,
            down_probes=down,
            policy=policy,
            maintenance_announced=announced,
            maintenance_for=maintenance_for,
            maintenance_expired=announced and not believed,
        )
