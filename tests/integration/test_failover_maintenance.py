"""SMTP ``421`` is maintenance, not an outage: the real probe against real servers answering 421, and the monitor.

smtp-sink (Postfix's test server) answers 421 at a chosen step of the dialogue, or its
soft error (450) for contrast. The primary stand-in (Postfix + Dovecot + HTTPS health)
goes into maintenance as Exchange does: Postfix greets ``421 4.3.2 ... Service not
available`` and the health endpoints answer 503. The monitor, with the real probes, the
default policy and a simulated clock, then never suspects an outage, although SMTP plus
the health endpoints failing would be one; when the same primary goes silent, it fails
over.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.adapters.probe_smtp import SmtpProbeTarget, probe_smtp
from continuity.core.failover import FailoverState
from continuity.core.health import HealthVerdict
from continuity.core.probes import ProbeKind, ProbeOutcome
from continuity.services.failover_wiring import build_failover
from continuity.services.monitor import Monitor
from continuity.services.probe_runner import PrimaryProbes
from continuity.store.protocol import Store
from continuity.store.sqlite import open_sqlite_store
from tests.support.appliance import make_settings
from tests.support.ports import free_port
from tests.support.primary import PrimaryStandIn
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow

CANARY = "canary@example.com"


def _target(port: int) -> SmtpProbeTarget:
    # smtp-sink offers no STARTTLS; the canary RCPT makes the probe go through MAIL and RCPT too.
    return SmtpProbeTarget("127.0.0.1", port, "standby.example.com", ssl.create_default_context(), False, CANARY, 14, 5)


@pytest.mark.parametrize("step", ["CONNECT", "EHLO", "MAIL", "RCPT"])
async def test_smtp_421_at_any_step_is_maintenance_and_a_soft_error_is_not(tmp_path: Path, step: str) -> None:
    for options, outcome, code in (
        (("-Q", step), ProbeOutcome.MAINTENANCE, "421 "),
        (("-r", step), ProbeOutcome.DOWN, "450 "),
    ):
        sink = SmtpSink(tmp_path, extra_args=options)
        sink.start()
        try:
            result = await probe_smtp(_target(sink.port))
        finally:
            sink.stop()
        assert result.outcome is outcome, f"smtp-sink {' '.join(options)}: {result.detail}"
        assert code in result.detail and result.kind is ProbeKind.SMTP
    assert result.detail.startswith("banner 450" if step == "CONNECT" else "450")


@pytest.fixture
def primary() -> Iterator[PrimaryStandIn]:
    stand_in = PrimaryStandIn(["example.com"], {CANARY: "canary-pw"})
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite_store(tmp_path / "continuity.db", tmp_path / "blobs")
    try:
        yield opened
    finally:
        await opened.close()


async def test_exchange_in_maintenance_is_not_an_outage_but_silence_is(
    tmp_path: Path, primary: PrimaryStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="continuity.monitor")
    clock = [1_000_000.0]
    settings = make_settings(tmp_path / "data", **primary.settings(CANARY), failover={"mode": "gateway"})
    services = build_failover(settings, store, background=False)
    services.controller._clock = lambda: clock[0]
    await services.controller.load()
    probes = PrimaryProbes(settings)
    policy = settings.monitor.policy()
    interval = settings.monitor.interval
    monitor = Monitor(
        store,
        services.controller,
        probes,
        policy,
        interval=interval,
        command_poll=0.5,
        metrics=services.metrics,
        clock=lambda: clock[0],
    )

    async def cycle() -> str:
        sentence = await monitor.cycle()
        clock[0] += interval
        return sentence

    try:
        assert "every probe up" in await cycle()

        primary.maintenance(True)
        # Twice the policy's detection time in maintenance.
        cycles = 2 * int(policy.minimum_detection_time(interval) / interval) + 1
        for _ in range(cycles):
            sentence = await cycle()
            results = {result.name: result for result in monitor.last_results}
            smtp = results.pop("smtp")
            assert smtp.outcome is ProbeOutcome.MAINTENANCE, smtp.detail
            assert smtp.detail.startswith("maintenance: banner 421 4.3.2") and "Service not available" in smtp.detail
            # The rest is down as it would be in an outage: only the 421 keeps this from counting as one.
            https = [result for result in results.values() if result.kind is ProbeKind.HTTPS]
            assert len(https) == 4 and all(result.outcome is ProbeOutcome.DOWN for result in https)
            assert policy.weight(ProbeKind.SMTP) + sum(policy.weight(r.kind) for r in https) >= policy.outage_threshold
            assert monitor.last_assessment is not None
            assert monitor.last_assessment.verdict is HealthVerdict.MAINTENANCE
            assert sentence.startswith("primary announces maintenance (SMTP 421) for ")
            assert sentence.endswith("(weight 1 < 1.25); NORMAL: nothing to do"), sentence
            assert services.controller.record.state is FailoverState.NORMAL
        assert await store.failover.history() == []
        assert any("monitor: primary announces maintenance (SMTP 421) for" in r.getMessage() for r in caplog.records)

        primary.maintenance(False)
        assert "every probe up" in await cycle()

        # A reboot is silence, not an announcement: the same monitor fails over after the detection time.
        primary.stop()
        states = []
        for _ in range(cycles):
            await cycle()
            states.append(services.controller.record.state)
            if states[-1] is not FailoverState.SUSPECT and states[-1] is not FailoverState.NORMAL:
                break
        assert FailoverState.SUSPECT in states and states[-1] is FailoverState.FAILED_OVER
        smtp = next(result for result in monitor.last_results if result.name == "smtp")
        assert smtp.outcome is ProbeOutcome.DOWN
    finally:
        await probes.close()
        await services.close()


async def _monitor_of(tmp_path: Path, store: Store, settings_overrides: dict[str, Any], clock: list[float]) -> Monitor:
    settings = make_settings(tmp_path / "data", failover={"mode": "gateway"}, **settings_overrides)
    services = build_failover(settings, store, background=False)
    services.controller._clock = lambda: clock[0]
    await services.controller.load()
    return Monitor(
        store,
        services.controller,
        PrimaryProbes(settings),
        settings.monitor.policy(),
        interval=settings.monitor.interval,
        command_poll=0.5,
        metrics=services.metrics,
        clock=lambda: clock[0],
    )


async def _cycles_until_failed_over(monitor: Monitor, clock: list[float], limit: int) -> int:
    for cycle in range(1, limit + 1):
        await monitor.cycle()
        clock[0] += monitor.tracker.policy.interval
        if monitor._controller.record.state is FailoverState.FAILED_OVER:
            return cycle
    return 0


async def test_a_421_on_the_dead_primarys_address_delays_failover_only_for_the_maintenance_limit(
    tmp_path: Path, store: Store
) -> None:
    # The primary is gone; whatever now answers on its SMTP address greets 421 (smtp-sink), and
    # nothing answers HTTPS. The real probes, the default policy, a simulated clock.
    sink = SmtpSink(tmp_path, extra_args=("-Q", "CONNECT"))
    sink.start()
    clock = [1_000_000.0]
    overrides = {
        "primary": {"host": "127.0.0.1", "smtp_port": sink.port},
        "monitor": {"https_port": free_port(), "smtp_require_starttls": False},
    }
    monitor = await _monitor_of(tmp_path, store, overrides, clock)
    policy = monitor.tracker.policy
    try:
        cycles = await _cycles_until_failed_over(monitor, clock, 400)
    finally:
        sink.stop()
        await monitor._probes.close()  # type: ignore[union-attr]
    smtp = next(result for result in monitor.last_results if result.name == "smtp")
    assert smtp.outcome is ProbeOutcome.MAINTENANCE and "banner 421" in smtp.detail
    # Maintenance is believed for maintenance_limit (30 minutes), then the outage is detected as usual.
    assert policy.maintenance_limit == 1800
    believed = int(policy.maintenance_limit / policy.interval)
    assert cycles == believed + policy.cycles_to_down, cycles
    entry = next(e for e in await store.failover.history() if e.event.value == "health_down")
    assert "longer than the 1800s maintenance is believed" in entry.reason


async def test_a_421_does_not_outvote_the_other_probes(tmp_path: Path, store: Store) -> None:
    # SMTP greets 421, but IMAP and every health URL are down: together they reach the outage
    # threshold without SMTP, so the primary is down after the usual detection time.
    sink = SmtpSink(tmp_path, extra_args=("-Q", "CONNECT"))
    sink.start()
    clock = [1_000_000.0]
    overrides = {
        "primary": {"host": "127.0.0.1", "smtp_port": sink.port, "imap_port": free_port()},
        "monitor": {
            "https_port": free_port(),
            "smtp_require_starttls": False,
            "imap": True,
            "canary_user": CANARY,
            "canary_password": "canary-pw",
        },
    }
    monitor = await _monitor_of(tmp_path, store, overrides, clock)
    try:
        cycles = await _cycles_until_failed_over(monitor, clock, 20)
    finally:
        sink.stop()
        await monitor._probes.close()  # type: ignore[union-attr]
    assert cycles == monitor.tracker.policy.cycles_to_down
    smtp = next(result for result in monitor.last_results if result.name == "smtp")
    assert smtp.outcome is ProbeOutcome.MAINTENANCE
    entry = next(e for e in await store.failover.history() if e.event.value == "health_down")
    assert "the other probes outweigh the SMTP 421" in entry.reason
