"""An operator's failback waits for the hold-down, like the automatic one."""

from __future__ import annotations

from continuity.core.failback_guard import failback_refusal
from continuity.core.health import HealthPolicy, HealthTracker
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult

POLICY = HealthPolicy(successes_to_up=3, hold_down=600.0, interval=300.0)


def _cycle(now: float, up: bool) -> list[ProbeResult]:
    outcome = ProbeOutcome.UP if up else ProbeOutcome.DOWN
    return [
        ProbeResult("smtp", ProbeKind.SMTP, outcome, 0.01, "", now),
        ProbeResult("https:/owa/healthcheck.htm", ProbeKind.HTTPS, outcome, 0.01, "", now),
    ]


def test_without_probes_only_an_explicit_zero_hold_down_allows_it() -> None:
    refusal = failback_refusal(None, POLICY, probing=False)
    assert refusal is not None and "hold_down = 0" in refusal and "600s" in refusal
    assert failback_refusal(None, HealthPolicy(hold_down=0), probing=False) is None


def test_refused_until_healthy_for_the_hold_down_then_allowed() -> None:
    tracker = HealthTracker(POLICY)
    assert "not been probed" in (failback_refusal(None, POLICY, probing=True) or "")
    down = tracker.observe(_cycle(0, up=False), 0)
    assert "not healthy" in (failback_refusal(down, POLICY, probing=True) or "")
    for now in (10, 100, 300):
        assessment = tracker.observe(_cycle(now, up=True), now)
        refusal = failback_refusal(assessment, POLICY, probing=True)
        assert refusal is not None and "needs 600s" in refusal
    assert "healthy for 290s over 3 cycle(s)" in (refusal or "")
    up = tracker.observe(_cycle(610, up=True), 610)
    assert failback_refusal(up, POLICY, probing=True) is None
