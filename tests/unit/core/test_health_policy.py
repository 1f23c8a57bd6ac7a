"""The health policy: weights, N failures over T seconds, M successes plus hold-down, maintenance."""

from __future__ import annotations

import random

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing, apply
from continuity.core.health import CycleHealth, HealthPolicy, HealthTracker, HealthVerdict, classify_cycle
from continuity.core.monitor_decision import decide
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult

URLS = ("/owa/healthcheck.htm", "/ews/healthcheck.htm", "/Autodiscover/healthcheck.htm", "/mapi/healthcheck.htm")


def _cycle(now: float, down: set[str] = frozenset(), maintenance: bool = False) -> list[ProbeResult]:  # type: ignore[assignment]
    probes = [("smtp", ProbeKind.SMTP), ("imap", ProbeKind.IMAP)] + [(f"https:{u}", ProbeKind.HTTPS) for u in URLS]
    results = []
    for name, kind in probes:
        outcome = ProbeOutcome.DOWN if name in down else ProbeOutcome.UP
        if maintenance and kind is ProbeKind.SMTP:
            outcome = ProbeOutcome.MAINTENANCE
        results.append(ProbeResult(name, kind, outcome, 0.01, "", now))
    return results


def test_weights_smtp_plus_one_url_is_an_outage_one_flaky_url_is_not() -> None:
    policy = HealthPolicy()
    assert classify_cycle(_cycle(0, {"https:/owa/healthcheck.htm"}), policy)[0] is CycleHealth.DEGRADED
    assert classify_cycle(_cycle(0, {"smtp"}), policy)[0] is CycleHealth.DEGRADED
    assert classify_cycle(_cycle(0, {"imap"}), policy)[0] is CycleHealth.DEGRADED
    cycle, weight, names = classify_cycle(_cycle(0, {"smtp", "https:/ews/healthcheck.htm"}), policy)
    assert cycle is CycleHealth.FAILED and weight == 1.25 and names == ("smtp", "https:/ews/healthcheck.htm")
    assert classify_cycle(_cycle(0, {"smtp"}, maintenance=True), policy)[0] is CycleHealth.MAINTENANCE


def test_down_needs_n_failures_spanning_t() -> None:
    policy = HealthPolicy(failures_to_down=3, down_after=60)
    tracker = HealthTracker(policy)
    everything = {"smtp", "imap", *(f"https:{u}" for u in URLS)}
    verdicts = [tracker.observe(_cycle(t, everything), t).verdict for t in range(0, 70, 5)]
    # Three failures come at t=10 but they span only 10 s: down is declared at t=60.
    assert verdicts.index(HealthVerdict.DOWN) == 12
    assert set(verdicts[:12]) == {HealthVerdict.FAILING}
    assert policy.minimum_detection_time(5) == 60
    assert policy.minimum_detection_time(45) == 90


def test_up_needs_m_successes_and_hold_down_and_failures_reset_it() -> None:
    tracker = HealthTracker(HealthPolicy(successes_to_up=3, hold_down=100))
    assert tracker.observe(_cycle(0), 0).verdict is HealthVerdict.RECOVERING
    assert tracker.observe(_cycle(50), 50).verdict is HealthVerdict.RECOVERING
    assert tracker.observe(_cycle(99), 99).verdict is HealthVerdict.RECOVERING
    failed = tracker.observe(_cycle(100, {"smtp", "imap"}), 100)
    assert failed.verdict is HealthVerdict.FAILING and failed.healthy_streak == 0
    assert tracker.observe(_cycle(110), 110).healthy_for == 0
    assert tracker.observe(_cycle(150), 150).verdict is HealthVerdict.RECOVERING
    up = tracker.observe(_cycle(210), 210)
    assert up.verdict is HealthVerdict.UP and up.healthy_streak == 3 and up.healthy_for == 100
    assert "primary is up" in up.sentence()


def test_maintenance_restarts_both_streaks() -> None:
    tracker = HealthTracker(HealthPolicy(failures_to_down=2, down_after=10))
    tracker.observe(_cycle(0, {"smtp", "imap"}), 0)
    maintenance = tracker.observe(_cycle(10, maintenance=True), 10)
    assert maintenance.verdict is HealthVerdict.MAINTENANCE and "SMTP 421" in maintenance.sentence()
    assert tracker.observe(_cycle(20, {"smtp", "imap"}), 20).verdict is HealthVerdict.FAILING


def _simulate(policy: HealthPolicy, interval: float, cycles: int, failing: object) -> list[FailoverState]:
    """Run tracker + decisions + machine; switches succeed at once. Returns every state entered."""
    tracker = HealthTracker(policy)
    record = FailoverRecord()
    entered: list[FailoverState] = []
    probes = [("smtp", ProbeKind.SMTP), ("imap", ProbeKind.IMAP)] + [(f"https:{u}", ProbeKind.HTTPS) for u in URLS]
    for index in range(cycles):
        now = index * interval
        results = [
            ProbeResult(name, kind, ProbeOutcome.DOWN if failing(index, name) else ProbeOutcome.UP, 0.01, "", now)  # type: ignore[operator]
            for name, kind in probes
        ]
        decision = decide(record, tracker.observe(results, now))
        if decision.event is not None:
            record = apply(record, decision.event, at=now, actor="monitor", reason=decision.sentence).record
            entered.append(record.state)
        if record.state is FailoverState.FAILING_OVER:
            record = apply(
                record, FailoverEvent.SWITCH_SUCCEEDED, at=now, actor="s", reason="", switched_to=Routing.STANDBY
            ).record
            entered.append(record.state)
    return entered


def test_flapping_primary_never_fails_over() -> None:
    # Every probe fails at random 20% of the time, for a simulated week at a 5 s interval.
    rng = random.Random(20)
    entered = _simulate(HealthPolicy(), 5.0, 7 * 24 * 720, lambda _i, _n: rng.random() < 0.2)
    assert FailoverState.FAILING_OVER not in entered
    assert FailoverState.SUSPECT in entered  # the flapping is seen, and only suspected


def test_hard_outage_fails_over_exactly_once() -> None:
    rng = random.Random(4)

    def failing(index: int, _name: str) -> bool:
        # Flapping, then down from cycle 1000 to 1500, then flapping again.
        return 1000 <= index < 1500 or rng.random() < 0.2

    entered = _simulate(HealthPolicy(), 5.0, 3000, failing)
    assert entered.count(FailoverState.FAILING_OVER) == 1
    assert entered.count(FailoverState.FAILED_OVER) == 1
    # A primary that still flaps is never stable for the hold-down: no switching back.
    assert FailoverState.RESTORING not in entered


def test_hard_outage_then_clean_recovery_restores_once_after_the_hold_down() -> None:
    entered = _simulate(HealthPolicy(), 5.0, 1000, lambda index, _name: 100 <= index < 200)
    assert entered == [
        FailoverState.SUSPECT,
        FailoverState.FAILING_OVER,
        FailoverState.FAILED_OVER,
        FailoverState.RESTORING,
    ]
