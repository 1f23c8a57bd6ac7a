"""Prometheus metrics of the failover monitor: probe latency and result, state, queue depth.

Each appliance has its own registry (so several can run in one test process); the web
tier serves it at ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from continuity.core.failover import FailoverState
from continuity.core.probes import ProbeResult


class FailoverMetrics:
    """The gauges and histograms, updated by the monitor."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.state = Gauge(
            "continuity_failover_state",
            "1 for the current failover state, 0 for the others",
            ["state"],
            registry=self.registry,
        )
        self.probe_up = Gauge(
            "continuity_probe_up",
            "1 when the probe found the primary's service up, 0 otherwise",
            ["probe"],
            registry=self.registry,
        )
        self.probe_latency = Histogram(
            "continuity_probe_latency_seconds",
            "Time each probe of the primary took",
            ["probe"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "continuity_queue_depth", "Messages waiting (queued for replay, held or to relay)", registry=self.registry
        )
        self.transitions = Gauge(
            "continuity_failover_transitions", "Transitions since the process started", registry=self.registry
        )
        self.set_state(FailoverState.NORMAL)

    def set_state(self, current: FailoverState) -> None:
        """Mark the current state."""
        for state in FailoverState:
            self.state.labels(state=state.value).set(1 if state is current else 0)

    def observe(self, results: Sequence[ProbeResult]) -> None:
        """Record one cycle's probe results."""
        for result in results:
            self.probe_up.labels(probe=result.name).set(1 if result.up else 0)
            self.probe_latency.labels(probe=result.name).observe(result.latency)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
