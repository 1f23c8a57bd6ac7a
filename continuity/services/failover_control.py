"""Carries out failover transitions: persist, audit, notify, then do the actions (switch, replay).

Only the process holding the data directory runs a controller: ``continuity serve``
(inside the monitor), or a CLI command when no server runs. Operator commands reach it
through the store (:meth:`process_commands`), so the CLI, the admin API and the monitor
never race: every transition is applied here, one at a time, on top of the stored
version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from continuity.core.audit import AuditRecord, canonical_json
from continuity.core.failover import (
    Action,
    FailoverEvent,
    FailoverRecord,
    FailoverState,
    Routing,
    Step,
    TransitionError,
    allowed,
    apply,
    pending_actions,
)
from continuity.core.failover_records import CommandStatus
from continuity.errors import ContinuityError
from continuity.services.gateway import RelayGate
from continuity.services.metrics import FailoverMetrics
from continuity.services.notifier import Notifier, StateChange
from continuity.services.replay_hook import Replayer
from continuity.services.switcher import Switcher, SwitchError
from continuity.store.protocol import Store

log = logging.getLogger("continuity.failover")


@dataclass
class _Backoff:
    """When the next switch attempt may run."""

    initial: float
    maximum: float
    delay: float = 0.0
    not_before: float = 0.0
    failures: int = field(default=0)

    def failed(self, now: float) -> None:
        self.failures += 1
        self.delay = min(self.maximum, self.initial if self.delay == 0 else self.delay * 2)
        self.not_before = now + self.delay

    def reset(self) -> None:
        self.delay = self.not_before = 0.0
        self.failures = 0


class FailoverController:
    """The one place that changes the failover state."""

    def __init__(
        self,
        store: Store,
        switcher: Switcher | None,
        replayer: Replayer,
        *,
        notifier: Notifier | None = None,
        gate: RelayGate | None = None,
        metrics: FailoverMetrics | None = None,
        appliance: str = "standby",
        retry_initial: float = 5.0,
        retry_max: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._switcher = switcher
        self._replayer = replayer
        self._notifier = notifier
        self._gate = gate
        self._metrics = metrics
        self._appliance = appliance
        self._clock = clock
        self._backoff = _Backoff(retry_initial, retry_max)
        self._lock = asyncio.Lock()
        self.record = FailoverRecord()
        # Says why an operator's failback may not start yet (the hold-down), or None.
        self.failback_guard: Callable[[], str | None] | None = None

    async def load(self) -> FailoverRecord:
        """Read the stored record (at start-up)."""
        self.record = await self._store.failover.load()
        self._follow()
        return self.record

    def _follow(self) -> None:
        if self._gate is not None:
            self._gate.update(self.record)
        if self._metrics is not None:
            self._metrics.set_state(self.record.state)

    async def fire(
        self,
        event: FailoverEvent,
        *,
        actor: str,
        reason: str,
        evidence: dict[str, object] | None = None,
        switched_to: Routing | None = None,
        act: bool = True,
    ) -> Step:
        """Apply one event: TransitionError (nothing changed) when illegal; otherwise persist, audit, notify, act."""
        async with self._lock:
            step = await self._transition(event, actor, reason, evidence or {}, switched_to)
        if act:
            await self._act(step.actions)
        return step

    async def _transition(
        self,
        event: FailoverEvent,
        actor: str,
        reason: str,
        evidence: dict[str, object],
        switched_to: Routing | None,
    ) -> Step:
        # Re-read: a CLI process may have changed the state while no server ran.
        self.record = await self._store.failover.load()
        step = apply(self.record, event, at=self._clock(), actor=actor, reason=reason, switched_to=switched_to)
        details: dict[str, object] = {
            "from": step.previous.value,
            "to": step.record.state.value,
            "event": event.value,
            "routing": step.record.routing.value,
            "version": step.record.version,
            "evidence": evidence,
        }
        if step.record.last_error:
            details["last_error"] = step.record.last_error
        await self._store.failover.save(step.record, step.previous, event, canonical_json(details))
        self.record = step.record
        self._follow()
        if self._metrics is not None:
            self._metrics.transitions.inc()
        try:
            await self._store.audit.append(AuditRecord.of(actor, f"failover.{event.value}", reason, details))
        except ContinuityError as exc:
            log.error(
                "transition %s -> %s is stored but its audit entry failed: %s", step.previous, step.record.state, exc
            )
        level = logging.ERROR if event is FailoverEvent.SWITCH_FAILED else logging.WARNING
        log.log(
            level,
            "failover state %s -> %s on %s by %s: %s",
            step.previous.value,
            step.record.state.value,
            event.value,
            actor,
            step.record.last_error if event is FailoverEvent.SWITCH_FAILED else reason,
        )
        if self._notifier is not None and (step.changed_state or event is FailoverEvent.SWITCH_FAILED):
            self._notifier.announce(StateChange(step.previous, event, step.record, evidence, self._appliance))
        return step

    async def _act(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if action is Action.STOP_REPLAY:
                await self._replayer.stop()
            elif action is Action.START_REPLAY:
                await self._replayer.start()
            else:
                self._backoff.reset()
                await self._switch(Routing.STANDBY if action is Action.SWITCH_TO_STANDBY else Routing.PRIMARY)

    async def _switch(self, to: Routing) -> None:
        if self._switcher is None:
            await self.fire(
                FailoverEvent.SWITCH_FAILED,
                actor="switcher",
                reason="no switcher is configured: check failover.mode and its settings",
                act=False,
            )
            self._backoff.failed(self._clock())
            return
        log.warning("switching mail to the %s", to.value)
        try:
            outcome = await self._switcher.switch(to)
        except SwitchError as exc:
            self._backoff.failed(self._clock())
            await self.fire(
                FailoverEvent.SWITCH_FAILED,
                actor="switcher",
                reason=f"{exc} (attempt {self._backoff.failures}, next in {self._backoff.delay:.0f}s)",
                evidence=exc.evidence,
                act=False,
            )
            return
        self._backoff.reset()
        step = await self.fire(
            FailoverEvent.SWITCH_SUCCEEDED,
            actor="switcher",
            reason=outcome.summary,
            evidence={**outcome.evidence, "duration_s": round(outcome.duration, 3)},
            switched_to=to,
            act=False,
        )
        await self._act(step.actions)

    async def reconcile(self) -> str:
        """Do the work the current state still needs (a switch due for retry, a replay); returns a sentence."""
        record = self.record
        actions = pending_actions(record)
        if record.state is FailoverState.PAUSED or not actions:
            return ""
        if Action.START_REPLAY in actions:
            progress = await self._replayer.progress()
            if progress.completed:
                await self.fire(FailoverEvent.REPLAY_COMPLETED, actor="replayer", reason=progress.detail)
                return f"replay complete ({progress.detail})"
            return f"replay: {progress.detail}"
        now = self._clock()
        if now < self._backoff.not_before:
            return f"switch retry in {self._backoff.not_before - now:.0f}s (last error: {record.last_error})"
        to = Routing.STANDBY if Action.SWITCH_TO_STANDBY in actions else Routing.PRIMARY
        await self._switch(to)
        return f"switch to the {to.value} attempted: now {self.record.state.value}"

    async def _failback_refusal(self, event: FailoverEvent) -> str | None:
        if event is not FailoverEvent.OPERATOR_FAILBACK or self.failback_guard is None:
            return None
        if not allowed((await self._store.failover.load()).state, event):
            return None  # the state machine's own refusal says more
        return self.failback_guard()

    async def process_commands(self) -> int:
        """Carry out pending operator commands in order; returns how many were handled."""
        commands = await self._store.failover.pending()
        for command in commands:
            refusal = await self._failback_refusal(command.event)
            if refusal is not None:
                await self._store.failover.finish(command.id, CommandStatus.REJECTED, refusal)
                log.warning("operator failback by %s refused: %s", command.actor, refusal)
                continue
            try:
                step = await self.fire(
                    command.event, actor=command.actor, reason=command.note or command.event.value, act=False
                )
            except TransitionError as exc:
                await self._store.failover.finish(command.id, CommandStatus.REJECTED, str(exc))
                log.warning("operator command %s by %s rejected: %s", command.event.value, command.actor, exc)
                continue
            await self._act(step.actions)
            if command.event is FailoverEvent.OPERATOR_FAILBACK and self.record.state is FailoverState.RESTORING:
                # With nothing to replay, the switch back follows at once: its outcome is the order's.
                try:
                    await self.reconcile()
                except ContinuityError as exc:
                    # The failback itself is done (RESTORING); the monitor's cycles go on from here.
                    log.error("after the failback order, the replay's progress could not be read: %s", exc)
            after = self.record
            result = after.state.value + (f" (last switch error: {after.last_error})" if after.last_error else "")
            # A switch error in the record now is this order's: entering a state clears the previous one.
            status = CommandStatus.FAILED if after.last_error else CommandStatus.DONE
            await self._store.failover.finish(command.id, status, result)
        return len(commands)
