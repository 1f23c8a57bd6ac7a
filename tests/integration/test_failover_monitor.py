"""The monitor loop under a simulated clock: a flapping primary never fails over, a hard outage fails over once.

Only the primary is simulated (its probe results); the monitor, the health policy, the
state machine, the controller, the SQLite store, the audit log and the gateway routing
switch are the real ones.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from continuity.core.failover import FailoverState
from continuity.core.health import HealthVerdict
from continuity.core.probes import ProbeKind, ProbeOutcome, ProbeResult
from continuity.services.failover_wiring import FailoverServices, build_failover
from continuity.services.monitor import Monitor
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import make_settings

PROBES = [("smtp", ProbeKind.SMTP), ("imap", ProbeKind.IMAP)] + [
    (f"https:/{name}/healthcheck.htm", ProbeKind.HTTPS) for name in ("owa", "ews", "Autodiscover", "mapi")
]


class SimulatedPrimary:
    """Probe results of a primary whose probes fail when `failing(cycle)` says so."""

    def __init__(self, clock: list[float], failing: Callable[[int], bool]) -> None:
        self._clock = clock
        self._failing = failing
        self.cycle = 0

    async def run(self) -> list[ProbeResult]:
        self.cycle += 1
        return [
            ProbeResult(
                name,
                kind,
                ProbeOutcome.DOWN if self._failing(self.cycle) else ProbeOutcome.UP,
                0.01,
                "simulated",
                self._clock[0],
            )
            for name, kind in PROBES
        ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def _run(tmp_path: Path, store: Store, failing: Callable[[int], bool], cycles: int) -> list[FailoverState]:
    clock = [1_000_000.0]
    settings = make_settings(tmp_path, primary={"host": "127.0.0.1"}, failover={"mode": "gateway"})
    services = build_failover(settings, store, background=False)
    services.controller._clock = lambda: clock[0]
    await services.controller.load()
    monitor = Monitor(
        store,
        services.controller,
        SimulatedPrimary(clock, failing),
        settings.monitor.policy(),
        interval=5.0,
        command_poll=0.5,
        metrics=services.metrics,
        clock=lambda: clock[0],
    )
    for _ in range(cycles):
        await monitor.cycle()
        clock[0] += 5.0
    return [entry.state for entry in await store.failover.history(limit=100_000)]


async def test_flapping_primary_never_fails_over(tmp_path: Path, store: Store) -> None:
    rng = random.Random(7)
    # Every probe fails together in a random 20% of the cycles (harsher than independent failures),
    # for 4 simulated hours at the 5 s interval.
    states = await _run(tmp_path, store, lambda _cycle: rng.random() < 0.2, 2880)
    assert FailoverState.FAILING_OVER not in states
    assert (await store.failover.load()).state in (FailoverState.NORMAL, FailoverState.SUSPECT)


async def test_hard_outage_fails_over_exactly_once(tmp_path: Path, store: Store) -> None:
    rng = random.Random(11)

    def failing(cycle: int) -> bool:
        # Flapping, then a ten-minute outage from cycle 300, then flapping again.
        return 300 <= cycle < 420 or rng.random() < 0.2

    states = await _run(tmp_path, store, failing, 900)
    assert states.count(FailoverState.FAILING_OVER) == 1
    assert states.count(FailoverState.FAILED_OVER) == 1
    record = await store.failover.load()
    assert record.state is FailoverState.FAILED_OVER and record.automatic
    entries = [e for e in await store.audit.list(1000) if e.record.action.startswith("failover.")]
    assert [e.record.action for e in entries].count("failover.health_down") == 1
    assert (await store.audit.verify()).ok


async def test_a_restart_during_recovery_resumes_the_hold_down(tmp_path: Path, store: Store) -> None:
    # An outage fails over; the primary comes back; serve is restarted half-way through the
    # hold-down: the new monitor carries on from the stored streaks instead of starting again.
    clock = [1_000_000.0]
    settings = make_settings(tmp_path, primary={"host": "127.0.0.1"}, failover={"mode": "gateway"})
    policy = settings.monitor.policy()
    interval = settings.monitor.interval
    primary = SimulatedPrimary(clock, lambda cycle: cycle <= 10)

    async def monitor_of_a_new_process() -> tuple[Monitor, FailoverServices]:
        services = build_failover(settings, store, background=False)
        services.controller._clock = lambda: clock[0]
        await services.controller.load()
        monitor = Monitor(
            store, services.controller, primary, policy, interval=interval, command_poll=0.5, clock=lambda: clock[0]
        )
        return monitor, services

    monitor, services = await monitor_of_a_new_process()
    healthy_cycles = 0
    while healthy_cycles < 20:
        await monitor.cycle()
        clock[0] += interval
        if primary.cycle > 10:
            healthy_cycles += 1
    assert services.controller.record.state is FailoverState.FAILED_OVER
    await services.close()

    # The restart takes 10 s; the cycle it missed does not count.
    clock[0] += 10
    monitor, services = await monitor_of_a_new_process()
    cycles_after_restart = 0
    while services.controller.record.state is FailoverState.FAILED_OVER:
        await monitor.cycle()
        clock[0] += interval
        cycles_after_restart += 1
        assert cycles_after_restart <= policy.cycles_to_up
    assert monitor.last_assessment is not None and monitor.last_assessment.verdict is HealthVerdict.UP
    assert cycles_after_restart == policy.cycles_to_up - 20
    assert services.controller.record.state is FailoverState.RESTORING
    await services.close()
