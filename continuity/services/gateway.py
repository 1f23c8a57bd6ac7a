"""Gateway mode: the MX always points at the appliance; while the primary serves mail, inbound mail is relayed to it.

:class:`RelayGate` says, from the failover record, whether mail goes to the primary
now; ingest asks it for the state of each new message (``relay`` or ``queued``), and
the :class:`RelayWorker` relays ``relay`` messages to ``[primary] host:smtp_port`` with
aiosmtplib (the standby mailbox keeps its copy). The :class:`GatewaySwitcher` is the
routing change: towards the standby it waits for the relay in flight, lets pending
commits land and turns every message still waiting to be relayed into one queued for
replay; towards the primary it checks that the primary's SMTP answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

import aiosmtplib

from continuity.adapters.smtp_transaction import send_message
from continuity.config.failover import FailoverSettings
from continuity.config.primary import PrimarySettings
from continuity.core.failover import DESIRED_ROUTING, FailoverRecord, Routing
from continuity.core.failover_records import RelayItem
from continuity.core.models import MessageState
from continuity.errors import ConfigError
from continuity.services.switcher import SwitchError, SwitchOutcome
from continuity.store.protocol import Store

log = logging.getLogger("continuity.gateway")

_BATCH = 50


class RelayGate:
    """Whether inbound mail is relayed to the primary right now (gateway mode only)."""

    def __init__(self, gateway_mode: bool, record: FailoverRecord | None = None) -> None:
        self.gateway_mode = gateway_mode
        self._record = record or FailoverRecord()
        self.changed = asyncio.Event()

    def update(self, record: FailoverRecord) -> None:
        """Follow the failover record (called after every transition)."""
        self._record = record
        self.changed.set()

    @property
    def relaying(self) -> bool:
        """True in gateway mode while mail is switched to the primary and the state wants it there."""
        desired = DESIRED_ROUTING[self._record.state]
        return self.gateway_mode and self._record.routing is Routing.PRIMARY and desired in (Routing.PRIMARY, None)

    def initial_state(self) -> MessageState:
        """The state ingest commits a new message in."""
        return MessageState.RELAY if self.relaying else MessageState.QUEUED


def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The client TLS context for talking to the primary."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"monitor.ca_file: cannot load {ca_file}: {exc}.") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RelayWorker:
    """Relays messages in state ``relay`` to the primary while the gate is open."""

    def __init__(
        self,
        store: Store,
        gate: RelayGate,
        primary: PrimarySettings,
        failover: FailoverSettings,
        helo: str,
        tls: ssl.SSLContext,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._gate = gate
        self._primary = primary
        self._settings = failover
        self._helo = helo
        self._tls = tls
        self._clock = clock
        # Held while a message is being handed to the primary; the switcher takes it to wait for that.
        self.lock = asyncio.Lock()
        self._retry_at: dict[str, float] = {}
        self.relayed = 0

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            worked = False
            if self._gate.relaying:
                try:
                    worked = await self.relay_pass()
                except Exception:
                    log.exception("relay pass failed; retrying in %.0fs", self._settings.relay_interval)
            if not worked:
                self._gate.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._gate.changed.wait(), self._settings.relay_interval)

    def wake(self) -> None:
        """Look for work now (after new mail was committed)."""
        self._gate.changed.set()

    async def relay_pass(self) -> bool:
        """Relay one batch; True when something was attempted."""
        now = self._clock()
        self._retry_at = {key: at for key, at in self._retry_at.items() if at > now}
        batch = await self._store.failover.relay_batch(_BATCH, skip=list(self._retry_at))
        for item in batch:
            async with self.lock:
                if not self._gate.relaying:
                    return True
                await self._relay_one(item)
        return bool(batch)

    async def _relay_one(self, item: RelayItem) -> None:
        content = item.trace_header + await self._store.blobs.read(item.sha256)
        delivered: list[str] = []
        failed: list[str] = []
        client = aiosmtplib.SMTP(
            hostname=self._primary.host,
            port=self._primary.smtp_port,
            local_hostname=self._helo,
            timeout=self._settings.relay_retry,
            start_tls=None,
            tls_context=self._tls,
        )
        errors: dict[str, int] = {}
        try:
            async with client:
                refused = await send_message(client, item.sender, item.recipients, content)
            errors = {recipient: response.code for recipient, response in refused.items()}
        except aiosmtplib.SMTPRecipientsRefused as exc:
            errors = {refusal.recipient: refusal.code for refusal in exc.recipients}
        except (aiosmtplib.SMTPException, OSError) as exc:
            reply = getattr(exc, "code", 0)
            if isinstance(reply, int) and 500 <= reply < 600:
                failed = list(item.recipients)
                log.error("%s: the primary refused the message for good: %s; held", item.queue_id, exc)
                await self._store.failover.finish_relay(item.queue_id, (), failed)
                return
            self._retry_at[item.queue_id] = self._clock() + self._settings.relay_retry
            log.warning("%s: relay to the primary deferred: %s", item.queue_id, exc)
            return
        for recipient in item.recipients:
            code = errors.get(recipient)
            if code is None:
                delivered.append(recipient)
            elif 500 <= code < 600:
                failed.append(recipient)
        if len(delivered) + len(failed) < len(item.recipients):
            self._retry_at[item.queue_id] = self._clock() + self._settings.relay_retry
        await self._store.failover.finish_relay(item.queue_id, delivered, failed)
        self.relayed += 1 if delivered else 0
        log.info(
            "%s: relayed to the primary for %d recipient(s)%s",
            item.queue_id,
            len(delivered),
            f", {len(failed)} refused for good (held)" if failed else "",
        )


class GatewaySwitcher:
    """The routing change of gateway mode."""

    def __init__(
        self,
        store: Store,
        worker: RelayWorker,
        drain: Callable[[], Awaitable[None]],
        primary: PrimarySettings,
        helo: str,
        tls: ssl.SSLContext,
        timeout: float,
    ) -> None:
        self._store = store
        self._worker = worker
        self._drain = drain
        self._primary = primary
        self._helo = helo
        self._tls = tls
        self._timeout = timeout

    async def switch(self, to: Routing) -> SwitchOutcome:
        started = time.monotonic()
        if to is Routing.STANDBY:
            async with self._worker.lock:
                await self._drain()
                requeued = await self._store.failover.requeue_relay()
            return SwitchOutcome(
                to,
                f"relaying stopped; {requeued} message(s) not yet relayed are queued for replay",
                {"mode": "gateway", "to": to.value, "requeued": requeued},
                time.monotonic() - started,
            )
        client = aiosmtplib.SMTP(
            hostname=self._primary.host,
            port=self._primary.smtp_port,
            local_hostname=self._helo,
            timeout=self._timeout,
            start_tls=None,
            tls_context=self._tls,
        )
        try:
            async with client:
                code, _text = await client.noop()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SwitchError(
                f"the primary's SMTP ({self._primary.host}:{self._primary.smtp_port}) does not answer: {exc}",
                {"mode": "gateway", "to": to.value, "error": str(exc)},
            ) from exc
        self._worker.wake()
        return SwitchOutcome(
            to,
            f"relaying to the primary {self._primary.host}:{self._primary.smtp_port} resumes (NOOP answered {code})",
            {"mode": "gateway", "to": to.value},
            time.monotonic() - started,
        )
