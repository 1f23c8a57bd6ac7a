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
            assert sentence == "primary announces maintenance (SMTP 421); NORMAL: nothing to do"
            assert services.controller.record.state is FailoverState.NORMAL
        assert await store.failover.history() == []
        assert any("monitor: primary announces maintenance (SMTP 421)" in r.getMessage() for r in caplog.records)

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
