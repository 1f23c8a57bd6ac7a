"""The replay's flow control: window, pauses, latency, rate."""

from __future__ import annotations

from continuity.core.replay_flow import FlowControl, FlowLimits

LIMITS = FlowLimits(concurrency=8, rate=0.0, pause=1.0, pause_max=8.0, latency_factor=3.0)


def test_throttling_halves_the_window_and_doubles_the_pause_up_to_the_maximum() -> None:
    flow = FlowControl(LIMITS)
    pauses = [flow.throttled(100.0 + n, "busy") for n in range(6)]
    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert flow.permits == 1 and flow.throttles == 6
    assert flow.delay(105.5) == flow.paused_until - 105.5 > 0
    flow.succeeded(0.01, 200.0)
    assert flow.throttled(300.0, "busy") == 1.0  # a success resets the pause


def test_successes_grow_the_window_back_to_the_concurrency() -> None:
    flow = FlowControl(LIMITS)
    flow.throttled(0.0, "busy")
    flow.throttled(0.0, "busy")
    assert flow.permits == 2
    for n in range(200):
        flow.succeeded(0.01, 10.0 + n)
    assert flow.permits == 8


def test_rising_latency_shrinks_the_window() -> None:
    flow = FlowControl(LIMITS)
    now = 0.0
    for _ in range(20):
        now += 0.05
        flow.succeeded(0.01, now)
    assert flow.permits == 8 and flow.slowdowns == 0
    for _ in range(30):
        now += 0.5
        flow.succeeded(0.5, now)
    assert flow.slowdowns >= 2 and flow.permits < 8
    assert "latency" in flow.last_event


def test_the_rate_cap_spaces_deliveries() -> None:
    flow = FlowControl(FlowLimits(concurrency=4, rate=10.0, pause=1.0, pause_max=8.0, latency_factor=3.0))
    delays = [flow.delay(50.0) for _ in range(5)]
    assert all(abs(delay - 0.1 * index) < 1e-9 for index, delay in enumerate(delays))
    assert "rate cap 10/s" in flow.describe()
