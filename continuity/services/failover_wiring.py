"""Builds the failover services from the settings: switcher, controller, monitor, relay worker, notifier.

Used by ``continuity serve`` (services/app.py) and by CLI commands that act while no
server runs (they build a controller without the background tasks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.failover import SwitchMode
from continuity.config.settings import Settings
from continuity.core.failback_guard import failback_refusal
from continuity.dns.factory import build_mx_updater
from continuity.errors import ContinuityError
from continuity.services.failover_control import FailoverController
from continuity.services.gateway import GatewaySwitcher, RelayGate, RelayWorker, tls_context
from continuity.services.metrics import FailoverMetrics
from continuity.services.monitor import Monitor
from continuity.services.notifier import Notifier
from continuity.services.probe_runner import PrimaryProbes
from continuity.services.replay_hook import Replayer
from continuity.services.replayer import ReplayService
from continuity.services.switcher import DnsSwitcher, Switcher
from continuity.store.protocol import Store

log = logging.getLogger("continuity.failover")


async def _nothing_to_drain() -> None:
    return None


@dataclass
class FailoverServices:
    """Everything failover needs at run time."""

    controller: FailoverController
    gate: RelayGate
    metrics: FailoverMetrics
    notifier: Notifier
    monitor: Monitor | None = None
    relay: RelayWorker | None = None
    probes: PrimaryProbes | None = None
    # The replayer RESTORING drives; None when another Replayer was passed in.
    replay: ReplayService | None = None
    # (name, coroutine function): created only when started, so a failed start leaves nothing un-awaited.
    tasks: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = field(default_factory=list)

    async def close(self) -> None:
        """Stop what runs beside the tasks (the canary probe, notifications and replay outcomes in flight)."""
        if self.probes is not None:
            await self.probes.close()
        if self.replay is not None:
            await self.replay.close()
        await self.notifier.drain()


def build_switcher(
    settings: Settings, store: Store, relay: RelayWorker, drain: Callable[[], Awaitable[None]]
) -> Switcher | None:
    """The switcher [failover] mode names, or None (with a logged reason) when it cannot be built."""
    monitor = settings.monitor
    tls = tls_context(monitor.tls_verify, str(monitor.ca_file) if monitor.ca_file else None)
    if settings.failover.mode is SwitchMode.GATEWAY:
        if not settings.primary.configured:
            log.error("gateway mode needs [primary] host; failover cannot switch")
            return None
        return GatewaySwitcher(
            store, relay, drain, settings.primary, settings.smtp.hostname, tls, monitor.probe_timeout
        )
    try:
        return DnsSwitcher(settings.dns, settings.domains, build_mx_updater(settings.dns))
    except ContinuityError as exc:
        level = logging.ERROR if settings.primary.configured else logging.INFO
        log.log(level, "DNS switching is not usable: %s", exc)
        return None


def build_failover(
    settings: Settings,
    store: Store,
    *,
    drain: Callable[[], Awaitable[None]] = _nothing_to_drain,
    replayer: Replayer | None = None,
    background: bool = True,
) -> FailoverServices:
    """Build the services; with background, also the monitor and relay tasks (for serve)."""
    gateway = settings.failover.mode is SwitchMode.GATEWAY
    gate = RelayGate(gateway)
    metrics = FailoverMetrics()
    monitor_settings = settings.monitor
    tls = tls_context(monitor_settings.tls_verify, str(monitor_settings.ca_file) if monitor_settings.ca_file else None)
    relay = RelayWorker(store, gate, settings.primary, settings.failover, settings.smtp.hostname, tls)
    mail = SmtpDelivery(settings.outbound, settings.smtp.hostname) if settings.notify.admin_emails else None
    notifier = Notifier(settings.notify, mail, settings.smtp.hostname)
    replay: ReplayService | None = None
    if replayer is None:
        replay = replayer = ReplayService(settings, store)
    controller = FailoverController(
        store,
        build_switcher(settings, store, relay, drain),
        replayer,
        notifier=notifier,
        gate=gate,
        metrics=metrics,
        appliance=settings.smtp.hostname,
        retry_initial=settings.failover.retry_initial,
        retry_max=settings.failover.retry_max,
    )
    services = FailoverServices(controller, gate, metrics, notifier, replay=replay)
    policy = monitor_settings.policy()
    # --- replay: follows the controller's state; an operator's failback waits for the hold-down ---
    if replay is not None:
        replay.follow(lambda: controller.record)
    controller.failback_guard = lambda: failback_refusal(None, policy, probing=False)
    if not background:
        return services
    probing = settings.primary.configured and monitor_settings.enabled
    services.probes = PrimaryProbes(settings) if probing else None
    services.monitor = Monitor(
        store,
        controller,
        services.probes,
        monitor_settings.policy(),
        interval=monitor_settings.interval,
        command_poll=settings.failover.command_poll,
        metrics=metrics,
    )
    services.tasks.append(("failover-monitor", services.monitor.run))
    monitor = services.monitor
    if services.probes is not None:
        controller.failback_guard = lambda: failback_refusal(monitor.last_assessment, policy, probing=True)
    if replay is not None:
        services.tasks.append(("replay", replay.run))
    if gateway and settings.primary.configured:
        services.relay = relay
        services.tasks.append(("gateway-relay", relay.run))
    return services


def start_tasks(services: FailoverServices) -> list[asyncio.Task[None]]:
    """Start the background coroutines."""
    return [asyncio.create_task(work(), name=name) for name, work in services.tasks]
