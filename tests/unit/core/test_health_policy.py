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


EVERYTHING = {"smtp", "imap", *(f"https:{u}" for u in URLS)}


def test_down_needs_n_failures_spanning_t() -> None:
    policy = HealthPolicy(failures_to_down=3, down_after=60, interval=5)
    tracker = HealthTracker(policy)
    verdicts = [tracker.observe(_cycle(t, EVERYTHING), t).verdict for t in range(0, 70, 5)]
    # Three failures come at t=10 but they span only 10 s: down is declared at t=60.
    assert verdicts.index(HealthVerdict.DOWN) == 12
    assert set(verdicts[:12]) == {HealthVerdict.FAILING}
    assert policy.cycles_to_down == 13
    assert policy.minimum_detection_time(5) == 60
    assert policy.minimum_detection_time(45) == 90
    assert HealthPolicy().minimum_detection_time() == 60


def test_spans_are_counted_in_cycles_so_clock_jitter_costs_no_cycle() -> None:
    # Cycles 15 s apart as a real loop runs them: a few milliseconds early or late.
    policy = HealthPolicy()
    times = [0.0, 15.01, 29.98, 45.02, 59.9, 75.0]
    tracker = HealthTracker(policy)
    verdicts = [tracker.observe(_cycle(t, EVERYTHING), t).verdict for t in times]
    # Detection after 60 s as documented (the fifth cycle), not 75 s.
    assert verdicts.index(HealthVerdict.DOWN) == 4 == policy.cycles_to_down - 1
    # The hold-down of 600 s is 40 intervals (41 cycles), not 615 s.
    tracker = HealthTracker(policy)
    start = 1000.0
    up_at = None
    for index in range(60):
        now = start + index * 15 - (0.1 if index % 2 else 0.0)
        if tracker.observe(_cycle(now), now).verdict is HealthVerdict.UP:
            up_at = index
            break
    assert up_at == 40 == policy.cycles_to_up - 1


def test_cycles_faster_than_the_interval_do_not_shorten_the_spans() -> None:
    tracker = HealthTracker(HealthPolicy(interval=15))
    verdicts = [tracker.observe(_cycle(t, EVERYTHING), t).verdict for t in range(0, 60, 1)]
    # Five cycles are counted by t=4, but the span is what the cycles stand for: 60 s, less half an interval.
    assert verdicts.index(HealthVerdict.DOWN) == 53


def test_up_needs_m_successes_and_hold_down_and_failures_reset_it() -> None:
    tracker = HealthTracker(HealthPolicy(successes_to_up=3, hold_down=100, interval=50))
    assert tracker.observe(_cycle(0), 0).verdict is HealthVerdict.RECOVERING
    assert tracker.observe(_cycle(50), 50).verdict is HealthVerdict.RECOVERING
    # 99.9 s is 100 s at this interval: two intervals, three cycles.
    assert tracker.observe(_cycle(99.9), 99.9).verdict is HealthVerdict.UP
    failed = tracker.observe(_cycle(150, {"smtp", "imap"}), 150)
    assert failed.verdict is HealthVerdict.FAILING and failed.healthy_streak == 0
    assert tracker.observe(_cycle(200), 200).healthy_for == 0
    assert tracker.observe(_cycle(250), 250).verdict is HealthVerdict.RECOVERING
    up = tracker.observe(_cycle(300), 300)
    assert up.verdict is HealthVerdict.UP and up.healthy_streak == 3 and up.healthy_for == 100
    assert "primary is up" in up.sentence()


def test_maintenance_restarts_both_streaks() -> None:
    tracker = HealthTracker(HealthPolicy(failures_to_down=2, down_after=10, interval=10))
    tracker.observe(_cycle(0, {"smtp", "imap"}), 0)
    maintenance = tracker.observe(_cycle(10, maintenance=True), 10)
    assert maintenance.verdict is HealthVerdict.MAINTENANCE and "SMTP 421" in maintenance.sentence()
    assert tracker.observe(_cycle(20, {"smtp", "imap"}), 20).verdict is HealthVerdict.FAILING


def test_one_421_never_outvotes_the_other_probes() -> None:
    policy = HealthPolicy()
    # IMAP and every health URL down: 0.5 + 4 x 0.25 reach the threshold without SMTP.
    others = {"imap", *(f"https:{u}" for u in URLS)}
    cycle, weight, names = classify_cycle(_cycle(0, others, maintenance=True), policy)
    assert cycle is CycleHealth.FAILED and weight == 1.5 and "smtp" not in names
    # Exchange in maintenance: its health URLs answer 503, IMAP still works: maintenance.
    urls = {f"https:{u}" for u in URLS}
    assert classify_cycle(_cycle(0, urls, maintenance=True), policy)[0] is CycleHealth.MAINTENANCE
    tracker = HealthTracker(policy)
    verdicts = [tracker.observe(_cycle(t, others, maintenance=True), t) for t in range(0, 75, 15)]
    assert verdicts[-1].verdict is HealthVerdict.DOWN
    assert "the other probes outweigh the SMTP 421" in verdicts[-1].sentence()


def test_maintenance_is_believed_for_maintenance_limit_at_most() -> None:
    policy = HealthPolicy(maintenance_limit=300)
    tracker = HealthTracker(policy)
    urls = {f"https:{u}" for u in URLS}
    verdicts = []
    expired = []
    for index in range(40):
        now = index * 15.0
        # Something answers 421 on the primary's address every other cycle; silence in between.
        results = _cycle(now, EVERYTHING if index % 2 else urls, maintenance=index % 2 == 0)
        assessment = tracker.observe(results, now)
        verdicts.append(assessment.verdict)
        if assessment.maintenance_expired:
            expired.append(assessment)
        if assessment.verdict is HealthVerdict.DOWN:
            break
    # Believed until 300 s after the first 421 (silence in between does not end it) ...
    assert HealthVerdict.MAINTENANCE in verdicts[:20]
    assert all(v is not HealthVerdict.DOWN for v in verdicts[:20])
    # ... then the 421 counts as SMTP down (from t=300), and the outage is detected as usual: the
    # failed streak began with the silent cycle at t=285.
    assert verdicts[-1] is HealthVerdict.DOWN and len(verdicts) == 19 + policy.cycles_to_down
    assert expired and expired[0].failing_for == 15 and expired[0].maintenance_for == 300
    assert "the SMTP 421 has lasted 300s, longer than the 300s maintenance is believed" in expired[0].sentence()


def test_the_smtp_probe_up_again_ends_the_maintenance_clock() -> None:
    tracker = HealthTracker(HealthPolicy(maintenance_limit=100))
    urls = {f"https:{u}" for u in URLS}
    for now in (0, 15, 30, 45, 60, 75, 90):
        assert tracker.observe(_cycle(now, urls, maintenance=True), now).verdict is HealthVerdict.MAINTENANCE
    tracker.observe(_cycle(105), 105)
    again = tracker.observe(_cycle(120, urls, maintenance=True), 120)
    assert again.verdict is HealthVerdict.MAINTENANCE and again.maintenance_for == 0


def test_memory_resumes_the_streaks_after_a_restart_unless_stale() -> None:
    policy = HealthPolicy(interval=15)
    tracker = HealthTracker(policy)
    for index in range(30):
        tracker.observe(_cycle(index * 15.0), index * 15.0)
    memory = tracker.memory()
    assert memory.healthy_streak == 30 and memory.last_cycle_at == 435
    # Restarted 20 s later: the streak goes on, the missed cycle does not count.
    restarted = HealthTracker(policy)
    assert restarted.resume(memory, 455)
    verdicts = [restarted.observe(_cycle(t), t).verdict for t in (455 + 15.0 * i for i in range(11))]
    assert verdicts[:10] == [HealthVerdict.RECOVERING] * 10 and verdicts[10] is HealthVerdict.UP
    # Stopped for an hour: nothing is known of that hour, start afresh.
    stale = HealthTracker(policy)
    assert not stale.resume(memory, 435 + 3600)
    assert stale.observe(_cycle(4035), 4035).healthy_streak == 1


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
    entered = _simulate(HealthPolicy(interval=5.0), 5.0, 7 * 24 * 720, lambda _i, _n: rng.random() < 0.2)
    assert FailoverState.FAILING_OVER not in entered
    assert FailoverState.SUSPECT in entered  # the flapping is seen, and only suspected


def test_hard_outage_fails_over_exactly_once() -> None:
    rng = random.Random(4)

    def failing(index: int, _name: str) -> bool:
        # Flapping, then down from cycle 1000 to 1500, then flapping again.
        return 1000 <= index < 1500 or rng.random() < 0.2

    entered = _simulate(HealthPolicy(interval=5.0), 5.0, 3000, failing)
    assert entered.count(FailoverState.FAILING_OVER) == 1
    assert entered.count(FailoverState.FAILED_OVER) == 1
    # A primary that still flaps is never stable for the hold-down: no switching back.
    assert FailoverState.RESTORING not in entered


def test_hard_outage_then_clean_recovery_restores_once_after_the_hold_down() -> None:
    entered = _simulate(HealthPolicy(interval=5.0), 5.0, 1000, lambda index, _name: 100 <= index < 200)
    assert entered == [
        FailoverState.SUSPECT,
        FailoverState.FAILING_OVER,
        FailoverState.FAILED_OVER,
        FailoverState.RESTORING,
    ]
