"""The health policy: from each monitor cycle's probe results to a verdict on the primary, with hysteresis.

A cycle *fails* when the summed weights of the probes that found their service down
reach the outage threshold; the default weights make "SMTP down plus one health URL
down" an outage while one flaky URL (or IMAP alone) is not. The primary is *down* after
``failures_to_down`` consecutive failed cycles that span at least ``down_after``
seconds, and *up* again after ``successes_to_up`` consecutive good cycles that span at
least ``hold_down`` seconds. An SMTP ``421`` anywhere in a cycle is maintenance: the
cycle counts neither for nor against the primary and both streaks restart.

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

    def weight(self, kind: ProbeKind) -> float:
        """The weight of one probe of this kind."""
        return self.weights.get(kind, 0.0)

    def minimum_detection_time(self, interval: float) -> float:
        """The shortest time from the first failed cycle to the verdict DOWN at this probe interval."""
        intervals = max(self.failures_to_down - 1, math.ceil(self.down_after / interval - 1e-9))
        return intervals * interval


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

    @property
    def suspect(self) -> bool:
        """True when enough consecutive cycles failed to suspect an outage."""
        return self.failed_streak >= self.policy.suspect_after

    @property
    def stably_healthy_cycles(self) -> bool:
        """True when enough consecutive good cycles were seen to clear a suspicion."""
        return self.healthy_streak >= self.policy.successes_to_up

    def sentence(self) -> str:
        """What the cycle saw, in words."""
        policy = self.policy
        if self.cycle is CycleHealth.MAINTENANCE:
            seen = "primary announces maintenance (SMTP 421)"
        elif self.down_probes:
            seen = (
                f"{', '.join(self.down_probes)} down (weight {self.down_weight:g}"
                f"{' >=' if self.cycle is CycleHealth.FAILED else ' <'} {policy.outage_threshold:g})"
            )
        else:
            seen = "every probe up"
        if self.verdict is HealthVerdict.DOWN:
            return f"{seen}; {self.failed_streak} failed cycles over {self.failing_for:.0f}s: primary is down"
        if self.verdict is HealthVerdict.FAILING:
            return (
                f"{seen}; {self.failed_streak} failed cycle(s) over {self.failing_for:.0f}s "
                f"(down needs {policy.failures_to_down} over {policy.down_after:g}s)"
            )
        if self.verdict is HealthVerdict.UP:
            return f"{seen}; healthy for {self.healthy_streak} cycles over {self.healthy_for:.0f}s: primary is up"
        if self.verdict is HealthVerdict.RECOVERING:
            return (
                f"{seen}; healthy for {self.healthy_streak} cycle(s) over {self.healthy_for:.0f}s "
                f"(stable needs {policy.successes_to_up} over {policy.hold_down:g}s)"
            )
        return seen


def classify_cycle(results: Sequence[ProbeResult], policy: HealthPolicy) -> tuple[CycleHealth, float, tuple[str, ...]]:
    """One cycle's class, the summed weight of the probes that were down, and their names."""
    if any(result.outcome is ProbeOutcome.MAINTENANCE for result in results):
        return CycleHealth.MAINTENANCE, 0.0, ()
    down = [result for result in results if result.outcome is ProbeOutcome.DOWN]
    weight = round(sum(policy.weight(result.kind) for result in down), 6)
    names = tuple(result.name for result in down)
    if not down:
        return CycleHealth.HEALTHY, 0.0, names
    if weight >= policy.outage_threshold:
        return CycleHealth.FAILED, weight, names
    return CycleHealth.DEGRADED, weight, names


class HealthTracker:
    """Feeds cycles through the policy; remembers the current failed and healthy streaks.

    Time is passed in (``now``), so the policy runs the same under a fake clock.
    """

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self._failed_streak = 0
        self._failed_since = 0.0
        self._healthy_streak = 0
        self._healthy_since = 0.0

    def observe(self, results: Sequence[ProbeResult], now: float) -> HealthAssessment:
        """Account for one cycle's results (taken at ``now``) and return the verdict."""
        cycle, weight, down = classify_cycle(results, self.policy)
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
        policy = self.policy
        if cycle is CycleHealth.MAINTENANCE:
            verdict = HealthVerdict.MAINTENANCE
        elif self._failed_streak:
            is_down = self._failed_streak >= policy.failures_to_down and failing_for >= policy.down_after
            verdict = HealthVerdict.DOWN if is_down else HealthVerdict.FAILING
        else:
            up = self._healthy_streak >= policy.successes_to_up and healthy_for >= policy.hold_down
            verdict = HealthVerdict.UP if up else HealthVerdict.RECOVERING
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
        )
