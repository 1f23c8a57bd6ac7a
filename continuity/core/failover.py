"""The failover state machine: states, events and one explicit transition table.

Sans-IO, the h11 way: :func:`apply` takes the current record and an event and returns
the new record, the transition and the actions the services must carry out; an event
the table does not allow in the current state raises :class:`TransitionError` and
changes nothing. Persisting the record, writing the audit log and doing the actions
(DNS or routing switch, replay) is the services' job.

The work a state still needs is derived from the record itself (:func:`pending_actions`),
not only from the transition that led there, so a restart in the middle of a switch
resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from continuity.errors import ContinuityError


class FailoverState(StrEnum):
    """Where the appliance stands towards the primary."""

    # The primary serves mail; the appliance watches it.
    NORMAL = "NORMAL"
    # Probes fail, not yet long enough for an outage.
    SUSPECT = "SUSPECT"
    # Switching mail to the standby (DNS update or routing change in progress or being retried).
    FAILING_OVER = "FAILING_OVER"
    # The standby serves mail after an outage.
    FAILED_OVER = "FAILED_OVER"
    # The primary is back; mail received meanwhile is being replayed into it.
    RESTORING = "RESTORING"
    # Replay done; switching mail back to the primary.
    FAILING_BACK = "FAILING_BACK"
    # Operator-declared compromise: the standby serves mail; never switches back on its own.
    COMPROMISED = "COMPROMISED"
    # Maintenance: the monitor watches but acts on nothing.
    PAUSED = "PAUSED"


class FailoverEvent(StrEnum):
    """What can happen to the machine."""

    HEALTH_SUSPECT = "health_suspect"
    HEALTH_OK = "health_ok"
    HEALTH_DOWN = "health_down"
    HEALTH_UP = "health_up"
    OPERATOR_FAILOVER = "operator_failover"
    OPERATOR_COMPROMISE = "operator_compromise"
    OPERATOR_FAILBACK = "operator_failback"
    OPERATOR_PAUSE = "operator_pause"
    OPERATOR_RESUME = "operator_resume"
    SWITCH_SUCCEEDED = "switch_succeeded"
    SWITCH_FAILED = "switch_failed"
    REPLAY_COMPLETED = "replay_completed"


class Routing(StrEnum):
    """Which side mail is switched to (the MX records, or the gateway's route)."""

    PRIMARY = "primary"
    STANDBY = "standby"


class Action(StrEnum):
    """Work the services must do after a transition."""

    SWITCH_TO_STANDBY = "switch_to_standby"
    SWITCH_TO_PRIMARY = "switch_to_primary"
    START_REPLAY = "start_replay"
    STOP_REPLAY = "stop_replay"


class TransitionError(ContinuityError):
    """The event is not allowed in the current state; nothing changed."""


class _Previous(StrEnum):
    """Table marker: go back to the state recorded when the machine was paused."""

    STATE = "previous state"


S = FailoverState
E = FailoverEvent

# (state, event) -> next state. Anything not listed is illegal.
TRANSITIONS: dict[tuple[FailoverState, FailoverEvent], FailoverState | _Previous] = {
    (S.NORMAL, E.HEALTH_SUSPECT): S.SUSPECT,
    (S.NORMAL, E.HEALTH_DOWN): S.FAILING_OVER,
    (S.NORMAL, E.OPERATOR_FAILOVER): S.FAILING_OVER,
    (S.NORMAL, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.NORMAL, E.OPERATOR_PAUSE): S.PAUSED,
    (S.SUSPECT, E.HEALTH_OK): S.NORMAL,
    (S.SUSPECT, E.HEALTH_DOWN): S.FAILING_OVER,
    (S.SUSPECT, E.OPERATOR_FAILOVER): S.FAILING_OVER,
    (S.SUSPECT, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.SUSPECT, E.OPERATOR_PAUSE): S.PAUSED,
    (S.FAILING_OVER, E.SWITCH_SUCCEEDED): S.FAILED_OVER,
    (S.FAILING_OVER, E.SWITCH_FAILED): S.FAILING_OVER,
    (S.FAILING_OVER, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.FAILING_OVER, E.OPERATOR_PAUSE): S.PAUSED,
    (S.FAILED_OVER, E.HEALTH_UP): S.RESTORING,
    (S.FAILED_OVER, E.OPERATOR_FAILBACK): S.RESTORING,
    (S.FAILED_OVER, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.FAILED_OVER, E.OPERATOR_PAUSE): S.PAUSED,
    (S.RESTORING, E.REPLAY_COMPLETED): S.FAILING_BACK,
    (S.RESTORING, E.HEALTH_DOWN): S.FAILED_OVER,
    (S.RESTORING, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.RESTORING, E.OPERATOR_PAUSE): S.PAUSED,
    (S.FAILING_BACK, E.SWITCH_SUCCEEDED): S.NORMAL,
    (S.FAILING_BACK, E.SWITCH_FAILED): S.FAILING_BACK,
    (S.FAILING_BACK, E.OPERATOR_COMPROMISE): S.COMPROMISED,
    (S.FAILING_BACK, E.OPERATOR_PAUSE): S.PAUSED,
    (S.COMPROMISED, E.SWITCH_SUCCEEDED): S.COMPROMISED,
    (S.COMPROMISED, E.SWITCH_FAILED): S.COMPROMISED,
    (S.COMPROMISED, E.OPERATOR_FAILBACK): S.RESTORING,
    (S.COMPROMISED, E.OPERATOR_PAUSE): S.PAUSED,
    (S.PAUSED, E.OPERATOR_RESUME): _Previous.STATE,
    (S.PAUSED, E.OPERATOR_COMPROMISE): S.COMPROMISED,
}

# Where mail must go in each state (PAUSED keeps whatever it has).
DESIRED_ROUTING: dict[FailoverState, Routing | None] = {
    S.NORMAL: Routing.PRIMARY,
    S.SUSPECT: Routing.PRIMARY,
    S.FAILING_OVER: Routing.STANDBY,
    S.FAILED_OVER: Routing.STANDBY,
    S.RESTORING: Routing.STANDBY,
    S.FAILING_BACK: Routing.PRIMARY,
    S.COMPROMISED: Routing.STANDBY,
    S.PAUSED: None,
}

_HINTS: dict[FailoverState, str] = {
    S.NORMAL: "the primary serves mail",
    S.SUSPECT: "the primary is suspected down",
    S.FAILING_OVER: "a switch to the standby is in progress",
    S.FAILED_OVER: "the standby already serves mail",
    S.RESTORING: "mail is being replayed into the primary",
    S.FAILING_BACK: "a switch back to the primary is in progress",
    S.COMPROMISED: "a compromise was declared; only 'failback' or 'pause' apply",
    S.PAUSED: "the monitor is paused; 'resume' first",
}


@dataclass(frozen=True, slots=True)
class FailoverRecord:
    """The persisted state of the machine."""

    state: FailoverState = FailoverState.NORMAL
    since: float = 0.0
    # Why the machine is in this state: the evidence sentence or the operator's note.
    reason: str = "initial state"
    actor: str = "system"
    routing: Routing = Routing.PRIMARY
    # True when the monitor failed over by itself (only then may it fail back by itself).
    automatic: bool = False
    paused_from: FailoverState | None = None
    # The last switch failure, cleared by a successful switch.
    last_error: str = ""
    # Bumped by every transition; guards against two writers.
    version: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one event: the new record, where it came from and what to do now."""

    record: FailoverRecord
    previous: FailoverState
    event: FailoverEvent
    actions: tuple[Action, ...]

    @property
    def changed_state(self) -> bool:
        """True when the state itself changed (not a self-loop such as a failed switch being retried)."""
        return self.record.state is not self.previous


def allowed(state: FailoverState, event: FailoverEvent) -> bool:
    """True when the table allows event in state."""
    return (state, event) in TRANSITIONS


def pending_actions(record: FailoverRecord) -> tuple[Action, ...]:
    """The work the record's state still needs (derived from the record, so restarts resume it).

    FAILING_OVER and FAILING_BACK always need their switch (the switchers are idempotent:
    a switch to where mail already goes only verifies it); COMPROMISED needs one until mail
    goes to the standby; RESTORING needs the replay.
    """
    state = record.state
    if state is FailoverState.FAILING_OVER or (
        state is FailoverState.COMPROMISED and record.routing is not Routing.STANDBY
    ):
        return (Action.SWITCH_TO_STANDBY,)
    if state is FailoverState.FAILING_BACK:
        return (Action.SWITCH_TO_PRIMARY,)
    if state is FailoverState.RESTORING:
        return (Action.START_REPLAY,)
    return ()


def apply(
    record: FailoverRecord,
    event: FailoverEvent,
    *,
    at: float,
    actor: str,
    reason: str,
    switched_to: Routing | None = None,
) -> Step:
    """Apply event to record; raises TransitionError (and changes nothing) when the table forbids it.

    switched_to is required with SWITCH_SUCCEEDED: the side the switch now points at.
    """
    target = TRANSITIONS.get((record.state, event))
    if target is None:
        raise TransitionError(f"'{event.value}' is not allowed in state {record.state.value} ({_HINTS[record.state]})")
    routing = record.routing
    last_error = record.last_error
    if event is FailoverEvent.SWITCH_SUCCEEDED:
        if switched_to is None:
            raise TransitionError("a switch_succeeded event must say which side mail was switched to")
        if switched_to is not DESIRED_ROUTING[record.state]:
            raise TransitionError(f"a switch to the {switched_to.value} does not complete state {record.state.value}")
        routing, last_error = switched_to, ""
    elif event is FailoverEvent.SWITCH_FAILED:
        last_error = reason
    new_state = (record.paused_from or FailoverState.NORMAL) if isinstance(target, _Previous) else target
    if new_state is not record.state:
        # A switch error belongs to the state that tried the switch.
        last_error = ""
    automatic = record.automatic
    if new_state is FailoverState.FAILING_OVER and record.state is not FailoverState.FAILING_OVER:
        automatic = event is FailoverEvent.HEALTH_DOWN
    elif new_state in (FailoverState.COMPROMISED, FailoverState.NORMAL):
        automatic = False
    paused_from = record.state if new_state is FailoverState.PAUSED else None
    keep_reason = event in (FailoverEvent.SWITCH_FAILED, FailoverEvent.SWITCH_SUCCEEDED) and (new_state is record.state)
    new = replace(
        record,
        state=new_state,
        since=record.since if new_state is record.state else at,
        reason=record.reason if keep_reason else reason,
        actor=record.actor if keep_reason else actor,
        routing=routing,
        automatic=automatic,
        paused_from=paused_from,
        last_error=last_error,
        version=record.version + 1,
    )
    actions: list[Action] = []
    if record.state is FailoverState.RESTORING and event is not FailoverEvent.REPLAY_COMPLETED:
        actions.append(Action.STOP_REPLAY)
    entered = new_state is not record.state or event is FailoverEvent.OPERATOR_RESUME
    if entered and new_state is not FailoverState.PAUSED:
        actions.extend(pending_actions(new))
    return Step(record=new, previous=record.state, event=event, actions=tuple(actions))
