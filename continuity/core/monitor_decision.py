"""What the monitor does with one cycle's health verdict in the current failover state.

Pure: the monitor service calls :func:`decide` once per cycle and logs the sentence it
returns, the Patroni way ("what I saw, what I decided").
"""

from __future__ import annotations

from dataclasses import dataclass

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState
from continuity.core.health import HealthAssessment, HealthVerdict


@dataclass(frozen=True, slots=True)
class Decision:
    """The event to apply (None: nothing to do) and the sentence that says why."""

    event: FailoverEvent | None
    sentence: str


def decide(record: FailoverRecord, health: HealthAssessment) -> Decision:
    """Map the verdict to an event in the current state, with one sentence for the log."""
    seen = health.sentence()
    state = record.state
    verdict = health.verdict

    def act(event: FailoverEvent, what: str) -> Decision:
        return Decision(event, f"{seen}; {state.value}: {what}")

    def wait(what: str) -> Decision:
        return Decision(None, f"{seen}; {state.value}: {what}")

    if state is FailoverState.PAUSED:
        return wait("paused, acting on nothing")
    if state is FailoverState.COMPROMISED:
        return wait("compromise declared, only an operator's failback ends it")
    if state in (FailoverState.NORMAL, FailoverState.SUSPECT) and verdict is HealthVerdict.DOWN:
        return act(FailoverEvent.HEALTH_DOWN, "failing over to the standby")
    if state is FailoverState.NORMAL:
        if verdict is HealthVerdict.FAILING and health.suspect:
            return act(FailoverEvent.HEALTH_SUSPECT, "suspecting an outage")
        return wait("nothing to do")
    if state is FailoverState.SUSPECT:
        if verdict is HealthVerdict.MAINTENANCE:
            return act(FailoverEvent.HEALTH_OK, "maintenance is not an outage, back to normal")
        if verdict in (HealthVerdict.RECOVERING, HealthVerdict.UP) and health.stably_healthy_cycles:
            return act(FailoverEvent.HEALTH_OK, "primary healthy again, back to normal")
        return wait("watching")
    if state is FailoverState.FAILED_OVER:
        if verdict is HealthVerdict.UP:
            if record.automatic:
                return act(FailoverEvent.HEALTH_UP, "primary stable for the hold-down, restoring")
            return wait("primary stable, but an operator ordered this failover: 'continuity failback' ends it")
        return wait("standby serves mail")
    if state is FailoverState.RESTORING and verdict is HealthVerdict.DOWN:
        return act(FailoverEvent.HEALTH_DOWN, "primary down again, stopping the replay")
    if state is FailoverState.RESTORING:
        return wait("replay in progress")
    return wait("switch in progress")
