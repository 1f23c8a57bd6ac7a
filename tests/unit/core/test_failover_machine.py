"""The failover state machine: the table is the whole truth, illegal events change nothing."""

from __future__ import annotations

import itertools

import pytest

from continuity.core.failover import (
    TRANSITIONS,
    Action,
    FailoverEvent,
    FailoverRecord,
    FailoverState,
    Routing,
    TransitionError,
    apply,
    pending_actions,
)

S = FailoverState
E = FailoverEvent


def _step(record: FailoverRecord, event: FailoverEvent, switched_to: Routing | None = None) -> FailoverRecord:
    return apply(record, event, at=record.since + 1, actor="test", reason=event.value, switched_to=switched_to).record


def test_every_state_is_reachable_and_has_a_way_out() -> None:
    sources = {state for state, _ in TRANSITIONS}
    targets = {target for target in TRANSITIONS.values() if isinstance(target, FailoverState)}
    assert sources == set(FailoverState)
    assert targets | {S.NORMAL} == set(FailoverState)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(FailoverState, FailoverEvent)))
def test_illegal_events_raise_and_change_nothing(state: FailoverState, event: FailoverEvent) -> None:
    record = FailoverRecord(state=state, since=5.0, reason="before", version=7)
    if (state, event) in TRANSITIONS:
        return
    with pytest.raises(TransitionError, match=f"'{event.value}' is not allowed in state {state.value}"):
        apply(record, event, at=9.0, actor="x", reason="y", switched_to=Routing.STANDBY)
    assert record == FailoverRecord(state=state, since=5.0, reason="before", version=7)


def test_automatic_outage_round_trip() -> None:
    record = FailoverRecord(since=1.0)
    suspect = apply(record, E.HEALTH_SUSPECT, at=2, actor="monitor", reason="smtp down")
    assert suspect.record.state is S.SUSPECT and suspect.actions == ()
    down = apply(suspect.record, E.HEALTH_DOWN, at=3, actor="monitor", reason="primary down")
    assert down.record.state is S.FAILING_OVER and down.actions == (Action.SWITCH_TO_STANDBY,)
    assert down.record.automatic and down.record.since == 3 and down.record.version == 2
    failed = apply(down.record, E.SWITCH_FAILED, at=4, actor="switcher", reason="NOTAUTH")
    assert failed.record.state is S.FAILING_OVER and failed.record.last_error == "NOTAUTH"
    assert failed.record.since == 3 and failed.record.reason == "primary down" and not failed.changed_state
    assert pending_actions(failed.record) == (Action.SWITCH_TO_STANDBY,)
    with pytest.raises(TransitionError, match="does not complete"):
        apply(failed.record, E.SWITCH_SUCCEEDED, at=5, actor="switcher", reason="", switched_to=Routing.PRIMARY)
    over = apply(failed.record, E.SWITCH_SUCCEEDED, at=5, actor="switcher", reason="", switched_to=Routing.STANDBY)
    assert over.record.state is S.FAILED_OVER and over.record.routing is Routing.STANDBY
    assert over.record.last_error == "" and over.actions == ()
    restoring = apply(over.record, E.HEALTH_UP, at=6, actor="monitor", reason="stable")
    assert restoring.record.state is S.RESTORING and restoring.actions == (Action.START_REPLAY,)
    back = apply(restoring.record, E.REPLAY_COMPLETED, at=7, actor="replayer", reason="done")
    assert back.record.state is S.FAILING_BACK and back.actions == (Action.SWITCH_TO_PRIMARY,)
    normal = apply(back.record, E.SWITCH_SUCCEEDED, at=8, actor="switcher", reason="", switched_to=Routing.PRIMARY)
    assert normal.record.state is S.NORMAL and normal.record.routing is Routing.PRIMARY
    assert not normal.record.automatic


def test_operator_failover_is_not_automatic() -> None:
    record = _step(FailoverRecord(), E.OPERATOR_FAILOVER)
    assert record.state is S.FAILING_OVER and not record.automatic


def test_compromise_switches_only_when_needed_and_never_leaves_alone() -> None:
    from_normal = apply(FailoverRecord(), E.OPERATOR_COMPROMISE, at=1, actor="op", reason="phishing")
    assert from_normal.record.state is S.COMPROMISED and from_normal.actions == (Action.SWITCH_TO_STANDBY,)
    switched = _step(from_normal.record, E.SWITCH_SUCCEEDED, Routing.STANDBY)
    assert switched.state is S.COMPROMISED and switched.routing is Routing.STANDBY
    assert pending_actions(switched) == ()
    for event in (E.HEALTH_UP, E.HEALTH_OK, E.HEALTH_DOWN, E.REPLAY_COMPLETED, E.OPERATOR_FAILOVER):
        with pytest.raises(TransitionError):
            _step(switched, event)
    over = _step(_step(_step(FailoverRecord(), E.OPERATOR_FAILOVER), E.SWITCH_SUCCEEDED, Routing.STANDBY), E.HEALTH_UP)
    assert over.state is S.RESTORING
    stopped = apply(over, E.OPERATOR_COMPROMISE, at=20, actor="op", reason="found a rule")
    assert stopped.record.state is S.COMPROMISED and stopped.actions == (Action.STOP_REPLAY,)


def test_pause_remembers_and_resume_restarts_pending_work() -> None:
    failing = _step(FailoverRecord(), E.HEALTH_DOWN)
    paused = apply(failing, E.OPERATOR_PAUSE, at=10, actor="op", reason="maintenance")
    assert paused.record.state is S.PAUSED and paused.record.paused_from is S.FAILING_OVER and paused.actions == ()
    for event in (E.HEALTH_DOWN, E.OPERATOR_FAILOVER, E.OPERATOR_FAILBACK, E.SWITCH_SUCCEEDED, E.OPERATOR_PAUSE):
        with pytest.raises(TransitionError, match="'resume' first"):
            _step(paused.record, event)
    resumed = apply(paused.record, E.OPERATOR_RESUME, at=11, actor="op", reason="done")
    assert resumed.record.state is S.FAILING_OVER and resumed.actions == (Action.SWITCH_TO_STANDBY,)
    assert resumed.record.paused_from is None
    assert _step(_step(FailoverRecord(), E.OPERATOR_PAUSE), E.OPERATOR_RESUME).state is S.NORMAL


def test_primary_down_during_replay_returns_to_failed_over() -> None:
    restoring = _step(_step(_step(FailoverRecord(), E.HEALTH_DOWN), E.SWITCH_SUCCEEDED, Routing.STANDBY), E.HEALTH_UP)
    step = apply(restoring, E.HEALTH_DOWN, at=50, actor="monitor", reason="down again")
    assert step.record.state is S.FAILED_OVER and step.actions == (Action.STOP_REPLAY,) and step.record.automatic


def test_the_documented_diagram_is_the_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "failover.md").read_text()
    edges: dict[tuple[str, str], list[str]] = {}
    for (state, event), target in TRANSITIONS.items():
        if isinstance(target, FailoverState):
            edges.setdefault((state.value, target.value), []).append(event.value)
    lines = {f"    {source} --> {target}: {', '.join(events)}" for (source, target), events in edges.items()}
    drawn = {line for line in doc.splitlines() if " --> " in line and not line.strip().startswith("[*]")}
    assert drawn == lines
