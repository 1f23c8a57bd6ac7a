"""Runs every configured probe of the primary for one monitor cycle.

SMTP, IMAP and the HTTPS endpoints run concurrently, each with its own timeout. The
canary round trip takes longer than a cycle, so it runs in the background every
``canary_interval`` seconds and its result joins the first cycle after it finishes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Protocol

from continuity.adapters.probe_canary import CanaryTarget, probe_canary
from continuity.adapters.probe_https import HttpsProbeTarget, probe_https
from continuity.adapters.probe_imap import ImapProbeTarget, probe_imap
from continuity.adapters.probe_smtp import SmtpProbeTarget, probe_smtp
from continuity.config.settings import Settings
from continuity.core.probes import ProbeResult
from continuity.services.gateway import tls_context

log = logging.getLogger("continuity.monitor")


class ProbeRunner(Protocol):
    """Something that probes the primary once per cycle."""

    async def run(self) -> list[ProbeResult]:
        """Every probe's result for this cycle."""
        ...


class PrimaryProbes:
    """The probes [monitor] configures, against [primary] host."""

    def __init__(self, settings: Settings, clock: object = None) -> None:
        monitor, primary = settings.monitor, settings.primary
        self.tls: ssl.SSLContext = tls_context(monitor.tls_verify, str(monitor.ca_file) if monitor.ca_file else None)
        helo = settings.smtp.hostname
        password = monitor.canary_password.get_secret_value() if monitor.canary_password else ""
        self.smtp = (
            SmtpProbeTarget(
                primary.host,
                primary.smtp_port,
                helo,
                self.tls,
                monitor.smtp_require_starttls,
                monitor.smtp_canary_rcpt,
                monitor.cert_warning_days,
                monitor.probe_timeout,
            )
            if monitor.smtp
            else None
        )
        imap = ImapProbeTarget(
            primary.host, primary.imap_port, monitor.canary_user, password, self.tls, monitor.probe_timeout
        )
        self.imap = imap if monitor.imap else None
        self.https = (
            HttpsProbeTarget(
                primary.host, monitor.https_port, tuple(monitor.health_paths), self.tls, monitor.probe_timeout
            )
            if monitor.https and monitor.health_paths
            else None
        )
        self.canary = (
            CanaryTarget(
                primary.host,
                primary.smtp_port,
                helo,
                settings.notify.from_address or f"continuity@{helo}",
                monitor.canary_address,
                imap,
                monitor.canary_deadline,
            )
            if monitor.canary_address
            else None
        )
        self._canary_interval = monitor.canary_interval
        self._canary_task: asyncio.Task[ProbeResult] | None = None
        self._canary_due = 0.0

    async def run(self) -> list[ProbeResult]:
        results: list[ProbeResult] = []
        jobs: list[asyncio.Task[ProbeResult | list[ProbeResult]]] = []
        if self.smtp is not None:
            jobs.append(asyncio.create_task(probe_smtp(self.smtp)))
        if self.imap is not None:
            jobs.append(asyncio.create_task(probe_imap(self.imap)))
        if self.https is not None:
            jobs.append(asyncio.create_task(probe_https(self.https)))
        for outcome in await asyncio.gather(*jobs):
            results.extend(outcome if isinstance(outcome, list) else [outcome])
        results.extend(self._canary_step())
        return results

    def _canary_step(self) -> list[ProbeResult]:
        if self.canary is None:
            return []
        finished: list[ProbeResult] = []
        if self._canary_task is not None and self._canary_task.done():
            finished.append(self._canary_task.result())
            self._canary_task = None
        loop = asyncio.get_running_loop()
        if self._canary_task is None and loop.time() >= self._canary_due:
            self._canary_due = loop.time() + self._canary_interval
            self._canary_task = asyncio.create_task(probe_canary(self.canary, self.tls), name="canary-probe")
        return finished

    async def close(self) -> None:
        """Stop a canary round trip in flight."""
        if self._canary_task is not None:
            self._canary_task.cancel()
            await asyncio.gather(self._canary_task, return_exceptions=True)
