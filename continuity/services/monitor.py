"""The monitor loop: probe the primary, weigh the results, decide, act; one sentence per cycle.

Between cycles it picks up operator commands (given through the CLI or the admin API,
stored in the database) every ``[failover] command_poll`` seconds. Time comes from an
injected clock, so the whole loop runs under a simulated clock in tests. The health
policy's memory (its streaks) is stored after every cycle and resumed by the first cycle
after a restart, so restarting ``continuity serve`` does not start the hold-down again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from continuity.core.health import HealthAssessment, HealthPolicy, HealthTracker
from continuity.core.monitor_decision import decide
from continuity.core.probes import ProbeResult
from continuity.errors import ContinuityError
from continuity.services.failover_control import FailoverController
from continuity.services.metrics import FailoverMetrics
from continuity.services.probe_runner import ProbeRunner
from continuity.store.protocol import Store

log = logging.getLogger("continuity.monitor")


class Monitor:
    """Runs the cycles and the command polling."""

    def __init__(
        self,
        store: Store,
        controller: FailoverController,
        probes: ProbeRunner | None,
        policy: HealthPolicy,
        *,
        interval: float,
        command_poll: float,
        metrics: FailoverMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._controller = controller
        self._probes = probes
        # The policy counts spans in cycles of the interval the monitor actually runs at.
        self.tracker = HealthTracker(replace(policy, interval=interval))
        self._resumed = False
        self._interval = interval
        self._command_poll = command_poll
        self._metrics = metrics
        self._clock = clock
        self.cycles = 0
        self.last_results: list[ProbeResult] = []
        self.last_assessment: HealthAssessment | None = None

    async def cycle(self) -> str:
        """One monitor cycle; returns (and logs) the decision sentence."""
        if self._probes is None:
            sentence = await self._controller.reconcile()
            return sentence
        # The cycle's time is when it started: probes that time out must not shift it.
        now = self._clock()
        if not self._resumed:
            await self._resume(now)
        results = await self._probes.run()
        self.cycles += 1
        self.last_results = results
        await self._store.failover.record_probes(results)
        if self._metrics is not None:
            self._metrics.observe(results)
            self._metrics.queue_depth.set(await self._store.messages.count())
        assessment = self.tracker.observe(results, now)
        self.last_assessment = assessment
        await self._store.failover.save_health(self.tracker.memory())
        decision = decide(self._controller.record, assessment)
        sentence = decision.sentence
        if decision.event is not None:
            step = await self._controller.fire(
                decision.event,
                actor="monitor",
                reason=sentence,
                evidence={
                    "probes": [result.evidence() for result in results],
                    "verdict": assessment.verdict.value,
                    "failed_cycles": assessment.failed_streak,
                    "failing_for_s": round(assessment.failing_for, 1),
                    "healthy_cycles": assessment.healthy_streak,
                    "healthy_for_s": round(assessment.healthy_for, 1),
                },
            )
            sentence += f" -> {step.record.state.value}"
        else:
            extra = await self._controller.reconcile()
            if extra:
                sentence += f"; {extra}"
        for result in results:
            for warning in result.warnings:
                log.warning("probe %s: %s", result.name, warning)
        log.info("monitor: %s", sentence)
        return sentence

    async def _resume(self, now: float) -> None:
        memory = await self._store.failover.load_health()
        self._resumed = True
        if memory is None or memory.last_cycle_at is None:
            return
        if self.tracker.resume(memory, now):
            log.info(
                "monitor: resuming the health streaks of %.0fs ago (%d failed, %d healthy cycle(s))",
                now - memory.last_cycle_at,
                memory.failed_streak,
                memory.healthy_streak,
            )
        else:
            log.info(
                "monitor: the stored health streaks are %.0fs old (more than %.0fs): starting afresh",
                now - memory.last_cycle_at,
                self.tracker.policy.resume_within,
            )

    async def run(self) -> None:
        """Cycle every interval and poll for commands in between, until cancelled."""
        loop = asyncio.get_running_loop()
        next_cycle = loop.time()
        while True:
            try:
                await self._controller.process_commands()
                if loop.time() >= next_cycle:
                    next_cycle = max(next_cycle + self._interval, loop.time())
                    await self.cycle()
            except ContinuityError as exc:
                log.error("monitor cycle failed: %s", exc)
            except Exception:
                log.exception("monitor cycle failed unexpectedly")
            await asyncio.sleep(max(0.0, min(self._command_poll, next_cycle - loop.time())))
