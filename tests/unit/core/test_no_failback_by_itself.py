"""A primary that looks healthy never brings mail back by itself after a compromise or an operator's failover.

The security model (docs/security-model.md) relies on this: whoever controls the primary
controls what its probes answer, so only an automatic (outage) failover may end on the
probes' word. The monitor's decisions (continuity.core.monitor_decision) and the
transition table are run together over a simulated day of perfect health.
"""

from __future__ import annotations

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing, apply
from continuity.core.health import HealthPolicy, HealthTracker
from continuity.core.monitor_decision import decide
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult

E = FailoverEvent
S = FailoverState
DAY = 24 * 3600
INTERVAL = 15.0


def _cycle(now: float, outcome: ProbeOutcome) -> list[ProbeResult]:
    return [
        ProbeResult("smtp", ProbeKind.SMTP, outcome, 0.01, "", now),
        ProbeResult("https:/owa/healthcheck.htm", ProbeKind.HTTPS, outcome, 0.01, "", now),
    ]


def _step(record: FailoverRecord, event: FailoverEvent, now: float, to: Routing | None = None) -> FailoverRecord:
    return apply(record, event, at=now, actor="test", reason=event.value, switched_to=to).record


def _events_while_healthy(record: FailoverRecord, start: float, seconds: float) -> list[FailoverEvent]:
    """Feed perfectly healthy cycles; return every event the monitor decided on."""
    tracker = HealthTracker(HealthPolicy())
    events = []
    now = start
    while now < start + seconds:
        decision = decide(record, tracker.observe(_cycle(now, ProbeOutcome.UP), now))
        if decision.event is not None:
            events.append(decision.event)
            record = _step(record, decision.event, now)
        now += INTERVAL
    return events


def _compromised() -> FailoverRecord:
    record = _step(FailoverRecord(), E.OPERATOR_COMPROMISE, 1)
    return _step(record, E.SWITCH_SUCCEEDED, 2, Routing.STANDBY)


def test_compromised_stays_whatever_the_probes_say() -> None:
    record = _compromised()
    assert record.state is S.COMPROMISED and not record.automatic
    assert _events_while_healthy(record, 10, DAY) == []


def test_after_a_compromise_a_failed_restoration_does_not_fail_back_by_itself() -> None:
    # The operator starts the failback, the primary falls again during the replay: FAILED_OVER,
    # but still not an automatic failover, so a healthy primary does not restart the replay.
    restoring = _step(_compromised(), E.OPERATOR_FAILBACK, 10)
    fallen = _step(restoring, E.HEALTH_DOWN, 20)
    assert fallen.state is S.FAILED_OVER and not fallen.automatic
    assert _events_while_healthy(fallen, 30, DAY) == []


def test_an_operators_outage_failover_waits_for_the_operator() -> None:
    record = _step(_step(FailoverRecord(), E.OPERATOR_FAILOVER, 1), E.SWITCH_SUCCEEDED, 2, Routing.STANDBY)
    assert record.state is S.FAILED_OVER and not record.automatic
    assert _events_while_healthy(record, 10, DAY) == []


def test_control_an_automatic_failover_does_fail_back_after_the_hold_down() -> None:
    record = _step(_step(FailoverRecord(), E.HEALTH_DOWN, 1), E.SWITCH_SUCCEEDED, 2, Routing.STANDBY)
    assert record.automatic
    assert _events_while_healthy(record, 10, DAY) == [E.HEALTH_UP]
