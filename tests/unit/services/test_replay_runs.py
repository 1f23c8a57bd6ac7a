"""Which replay run is current, and when it must wait for an operator (a compromise since the last NORMAL)."""

from __future__ import annotations

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing, apply
from continuity.core.replay_records import RunKind, RunStatus
from continuity.services.replay_runs import RunKeeper
from continuity.store.sqlite import SqliteStore

E = FailoverEvent


async def _walk(store: SqliteStore, *events: FailoverEvent) -> FailoverRecord:
    record = await store.failover.load()
    for at, event in enumerate(events, start=1):
        side = {
            E.SWITCH_SUCCEEDED: Routing.STANDBY if record.state is not FailoverState.FAILING_BACK else Routing.PRIMARY
        }
        step = apply(record, event, at=float(at), actor="test", reason=event.value, switched_to=side.get(event))
        await store.failover.save(step.record, step.previous, event, "{}")
        record = step.record
    return record


async def test_an_outage_restores_without_confirmation(store: SqliteStore) -> None:
    record = await _walk(store, E.OPERATOR_FAILOVER, E.SWITCH_SUCCEEDED, E.OPERATOR_FAILBACK)
    keeper = RunKeeper(store, lambda: 100.0)
    run = await keeper.current(RunKind.RESTORATION, record)
    assert run is not None and run.status is RunStatus.ACTIVE and not run.needs_confirmation
    assert await keeper.current(RunKind.RESTORATION, record) == run  # one run per restoration


async def test_a_compromise_during_restoring_requires_a_new_confirmation(store: SqliteStore) -> None:
    keeper = RunKeeper(store, lambda: 100.0)
    record = await _walk(store, E.OPERATOR_FAILOVER, E.SWITCH_SUCCEEDED, E.OPERATOR_FAILBACK)
    run = await keeper.current(RunKind.RESTORATION, record)
    assert run is not None and not run.compromise
    # A compromise is declared while the replay runs; RESTORING is left (the replayer stops the run).
    await store.replay.set_run_status(run.id, RunStatus.STOPPED, "RESTORING was left")
    record = await _walk(store, E.OPERATOR_COMPROMISE, E.SWITCH_SUCCEEDED, E.OPERATOR_FAILBACK)
    assert record.state is FailoverState.RESTORING
    resumed = await keeper.current(RunKind.RESTORATION, record)
    assert resumed is not None and resumed.id == run.id
    assert resumed.status is RunStatus.AWAITING_CONFIRMATION and resumed.needs_confirmation
    confirmed = await store.replay.confirm_run(run.id, "cli:root", 200.0)
    assert not confirmed.needs_confirmation
    # Stopped again inside the same compromise episode: confirm again.
    await store.replay.set_run_status(run.id, RunStatus.STOPPED, "paused")
    again = await keeper.current(RunKind.RESTORATION, record)
    assert again is not None and again.needs_confirmation


async def test_stragglers_need_queued_mail(store: SqliteStore) -> None:
    keeper = RunKeeper(store, lambda: 100.0)
    assert await keeper.current(RunKind.STRAGGLERS, FailoverRecord()) is None
