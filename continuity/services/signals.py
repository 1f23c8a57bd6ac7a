"""Compromise signals from the mail flow: per-mailbox baselines, forwards, malicious outbound mail, bounces.

The feeds hand every outbound message of the primary to :meth:`SignalService.assess_outbound`
before it is committed; the answer says whether to hold it. The decision for one mailbox
is serialised (a lock per mailbox), and containment is stored before the answer, so a
mailbox that suddenly floods is held after a bounded number of messages however many
sessions send at once. Inbound mail (gateway, journal) teaches each mailbox its
correspondents and reports bounces; the IMAP checks and the webhook report their own
signals through :meth:`report`.

What a mailbox did lately is kept by the SignalLedger (continuity/services/signal_ledger.py).
Held messages never enter the history or the known correspondents, so an attack does not
become tomorrow's normal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from continuity.core.baseline import (
    HOUR,
    ContactKind,
    ContactObservation,
    Observed,
    RatePolicy,
    SendEvent,
    bounce_signal,
    rate_signals,
)
from continuity.core.external_alerts import AlertScope, ExternalAlert
from continuity.core.mail_signs import MailSigns, hard_bounces, may_be_delivery_report, read_signs
from continuity.core.models import DirectoryEntry, IncomingMessage, MessageState
from continuity.core.pipeline import Finding, Verdict
from continuity.core.signal_builders import malicious_outbound_signal, rule_forward_signal
from continuity.core.signals import (
    MailboxState,
    Severity,
    Signal,
    SignalKind,
    StoredSignal,
    implicated_mailboxes,
)
from continuity.errors import ContinuityError
from continuity.services.filtering import PipelineResult
from continuity.services.signal_ledger import MailboxTrack, SignalLedger
from continuity.services.signal_responses import Responder
from continuity.store.protocol import Store

log = logging.getLogger("continuity.signals")

# What observe() needs to know of mail that only arrives and is no bounce report: nothing.
_ARRIVED = MailSigns("", "", (), "", False, False, False, False)


@dataclass(frozen=True, slots=True)
class OutboundFacts:
    """One outbound message of the primary, as the signals see it."""

    mailbox: str
    sender: str
    recipients: tuple[str, ...]
    signs: MailSigns
    source: str
    queue_id: str = ""
    verdict: Verdict | None = None
    findings: tuple[Finding, ...] = ()

    @classmethod
    def of(cls, mailbox: str, message: IncomingMessage, filtered: PipelineResult | None, source: str) -> OutboundFacts:
        """The facts of a message about to be committed."""
        return cls(
            mailbox=mailbox,
            sender=message.sender.lower(),
            recipients=tuple(dict.fromkeys(r.address.lower() for r in message.recipients)),
            signs=read_signs(message.content),
            source=source,
            queue_id=message.queue_id,
            verdict=filtered.verdict if filtered is not None else None,
            findings=tuple(f for result in filtered.results for f in result.findings) if filtered else (),
        )


@dataclass(frozen=True, slots=True)
class Assessment:
    """Whether to hold an outbound message, why, and the signals it raised."""

    hold: bool
    reason: str = ""
    signals: tuple[StoredSignal, ...] = ()


class SignalService:
    """Watches the mail flow for compromised mailboxes and responds through the Responder."""

    def __init__(
        self,
        store: Store,
        responder: Responder,
        rate_policy: RatePolicy,
        *,
        domains: frozenset[str],
        directory: Callable[[], dict[str, DirectoryEntry]],
        history_days: int = 28,
        exempt: frozenset[str] = frozenset(),
        primary_mailboxes: int = 3,
        primary_window: float = HOUR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.responder = responder
        self._rates = rate_policy
        self._domains = domains
        self._directory = directory
        self._exempt = exempt
        self._primary_mailboxes = primary_mailboxes
        self._primary_window = primary_window
        self.clock = clock
        self._ledger = SignalLedger(store, history_days, clock)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Hooks for the IMAP checks (set by the wiring): sampled sent and inbound messages.
        self.on_sent: Callable[[str, str, str], None] | None = None
        self.on_inbound: Callable[[str, str, str], None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start writing observations in the background."""
        self._ledger.start()

    async def stop(self) -> None:
        """Finish background work and write what is buffered."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._ledger.stop()

    async def flush(self) -> None:
        """Write buffered observations now."""
        await self._ledger.flush()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- helpers ----------------------------------------------------------------------------

    def mailbox_for(self, address: str) -> str:
        """The provisioned mailbox an address belongs to, or the address itself (lower-cased)."""
        key = address.strip().lower()
        entry = self._directory().get(key)
        return entry.mailbox if entry is not None else key

    def internal(self, address: str) -> bool:
        """True for an address in one of the protected domains."""
        return address.rpartition("@")[2].lower() in self._domains

    def _lock(self, mailbox: str) -> asyncio.Lock:
        lock = self._locks.get(mailbox)
        if lock is None:
            lock = self._locks[mailbox] = asyncio.Lock()
        return lock

    def _severity(self, kind: SignalKind) -> Severity:
        return self.responder.policy.severity(kind)

    async def _raise(
        self, signal: Signal, track: MailboxTrack | None, state: MailboxState | None
    ) -> tuple[StoredSignal | None, MailboxState | None]:
        """Record and respond to a signal unless the same finding is still open."""
        if track is not None:
            if signal.dedupe in track.open:
                return None, state
            track.open.add(signal.dedupe)
        stored, after = await self.responder.handle(signal, state)
        if signal.mailbox and signal.severity.rank >= Severity.HIGH.rank:
            await self._check_primary(signal)
        return stored, after

    async def _check_primary(self, trigger: Signal) -> None:
        """Raise PRIMARY_COMPROMISE when enough mailboxes have high signals within the window."""
        now = self.clock()
        recent = await self._store.signals.since(now - self._primary_window)
        if any(s.signal.kind is SignalKind.PRIMARY_COMPROMISE and s.cleared_at is None for s in recent):
            return
        implicated = implicated_mailboxes((s.signal for s in recent), now, self._primary_window, Severity.HIGH)
        if len(implicated) < self._primary_mailboxes:
            return
        kind = SignalKind.PRIMARY_COMPROMISE
        signal = Signal(
            kind,
            "",
            self._severity(kind),
            f"{len(implicated)} mailboxes show signs of compromise at once: the primary itself may be compromised",
            (
                f"mailboxes with high signals in the last {self._primary_window / 60:g} minutes: "
                + ", ".join(sorted(implicated)),
                f"threshold: {self._primary_mailboxes} mailboxes",
                f"latest: {trigger.kind.value} for {trigger.mailbox}",
            ),
            now,
            "signals",
        )
        await self.responder.handle(signal, None)

    # -- outbound ---------------------------------------------------------------------------

    async def assess_outbound(self, facts: OutboundFacts, *, can_hold: bool = True) -> Assessment:
        """Judge one outbound message before it is committed; hold it when the mailbox is (now) contained."""
        mailbox = facts.mailbox
        async with self._lock(mailbox):
            track, state = await self._ledger.track(mailbox)
            now = self.clock()
            message_id = facts.signs.message_id
            duplicate = bool(message_id) and message_id in track.recent_ids
            raised: list[StoredSignal] = []

            async def raise_(signal: Signal) -> None:
                nonlocal state
                stored, after = await self._raise(signal, track, state)
                if after is not None:
                    state = after
                if stored is not None:
                    raised.append(stored)

            observed = Observed(mailbox, facts.source, now, facts.queue_id)
            external = [r for r in facts.recipients if not self.internal(r)]
            new = [r for r in facts.recipients if r not in track.contacts and r != facts.sender]
            if not duplicate:
                if message_id:
                    track.recent_ids.append(message_id)
                track.hour.add(SendEvent(now, len(facts.recipients), len(new)))
                if mailbox not in self._exempt:
                    hour = track.hour.totals(now)
                    baseline = await self._ledger.baseline(mailbox, track)
                    for signal in rate_signals(observed, baseline, hour, self._rates, self._severity):
                        await raise_(signal)
                if facts.signs.rule_generated and not facts.signs.auto_reply:
                    owner = next((m for m in facts.signs.rule_mailboxes if self.internal(m)), mailbox)
                    how = facts.signs.generator or "X-MS-Exchange-Inbox-Rules-Loop"
                    for target in external:
                        forward = self._forward_signal(track, target, owner, how, message_id, observed)
                        if forward is not None:
                            await raise_(forward)
            if facts.verdict in (Verdict.QUARANTINE, Verdict.REJECT):
                await raise_(self._malicious(facts, observed))
            contained = state.contained
            hold = can_hold and (contained or facts.verdict is Verdict.QUARANTINE)
            malicious = facts.verdict in (Verdict.QUARANTINE, Verdict.REJECT)
            if not duplicate and not hold and not malicious:
                self._ledger.note_send(mailbox, SendEvent(now, len(facts.recipients), len(new)))
                for address in facts.recipients:
                    if address not in track.contacts:
                        track.contacts.add(address)
                        self._ledger.note_contact(ContactObservation(mailbox, address, ContactKind.SENT, now))
            reason = ""
            if hold:
                reason = (
                    f"mailbox contained: {state.reason}" if contained else "judged malicious by the filter pipeline"
                )
            return Assessment(hold, reason, tuple(raised))

    def _forward_signal(
        self, track: MailboxTrack, target: str, owner: str, how: str, message_id: str, observed: Observed
    ) -> Signal | None:
        """A RULE_FORWARD signal when target is a new forwarding target of the mailbox."""
        if target in track.forwards:
            return None
        track.forwards.add(target)
        self._ledger.note_contact(ContactObservation(observed.mailbox, target, ContactKind.FORWARD, observed.at))
        return rule_forward_signal(observed, self._severity(SignalKind.RULE_FORWARD), target, owner, how, message_id)

    def _malicious(self, facts: OutboundFacts, observed: Observed) -> Signal:
        severity = self._severity(SignalKind.MALICIOUS_OUTBOUND)
        return malicious_outbound_signal(observed, severity, facts.verdict, facts.findings, facts.recipients)

    async def note_forward(self, mailbox: str, target: str, source: str, queue_id: str = "") -> StoredSignal | None:
        """Mailbox forwarding seen in a journal report (Forwarded:): a signal for a new outside target."""
        async with self._lock(mailbox):
            track, state = await self._ledger.track(mailbox)
            observed = Observed(mailbox, source, self.clock(), queue_id)
            signal = self._forward_signal(track, target, mailbox, "mailbox forwarding (journal report)", "", observed)
            if signal is None:
                return None
            stored, _after = await self._raise(signal, track, state)
            return stored

    async def record_bounces(self, mailbox: str, recipients: Sequence[str], source: str, queue_id: str = "") -> None:
        """Hard bounces of the mailbox's mail; a burst raises a signal."""
        if not recipients:
            return
        async with self._lock(mailbox):
            track, state = await self._ledger.track(mailbox)
            now = self.clock()
            track.hour.add_bounces(now, len(recipients))
            self._ledger.note_bounces(mailbox, now, list(recipients))
            signal = bounce_signal(
                Observed(mailbox, source, now, queue_id), track.hour.bounces(now), self._rates, self._severity
            )
            if signal is not None:
                await self._raise(signal, track, state)

    # -- inbound and other sources ------------------------------------------------------------

    def observe(self, message: IncomingMessage, filtered: PipelineResult | None) -> None:
        """The ingest observer: learn correspondents, count bounces, sample for the IMAP checks."""
        if message.state in (MessageState.HELD, MessageState.CONTAINED):
            return
        sender = message.sender.lower()
        # Mail that only arrives needs its header read only when it may be a bounce report (ingest's hot path).
        copies = (MessageState.OUTGOING, MessageState.RELAY, MessageState.MIRRORED)
        if message.state in copies or may_be_delivery_report(message.content):
            signs = read_signs(message.content)
        else:
            signs = _ARRIVED
        outbound = message.state is MessageState.OUTGOING or (
            message.state is MessageState.MIRRORED and bool(sender) and self.internal(sender)
        )
        automatic = signs.rule_generated or signs.automatic or signs.delivery_report
        if outbound and self.on_sent is not None and sender and not automatic:
            self.on_sent(self.mailbox_for(sender), signs.message_id, message.queue_id)
        if message.state is MessageState.OUTGOING:
            return
        mailboxes = list(dict.fromkeys(r.mailbox for r in message.recipients if r.mailbox))
        if not mailboxes:
            return
        now = self.clock()
        if sender and not self.internal(sender):
            for mailbox in mailboxes:
                track = self._ledger.loaded(mailbox)
                if track is not None:
                    track.contacts.add(sender)
                self._ledger.note_contact(ContactObservation(mailbox, sender, ContactKind.RECEIVED, now))
        if signs.delivery_report:
            self._spawn(self._count_report(message, mailboxes))
        inbound_copy = message.state in (MessageState.RELAY, MessageState.MIRRORED) and not outbound
        if self.on_inbound is not None and inbound_copy:
            for mailbox in mailboxes:
                self.on_inbound(mailbox, signs.message_id, message.queue_id)

    async def _count_report(self, message: IncomingMessage, mailboxes: list[str]) -> None:
        try:
            failed = await asyncio.to_thread(hard_bounces, message.content)
            for mailbox in mailboxes:
                await self.record_bounces(mailbox, failed, "bounce report", message.queue_id)
        except ContinuityError as exc:
            log.warning("could not count the bounces of %s: %s", message.queue_id, exc)

    async def report(self, signal: Signal) -> StoredSignal | None:
        """A signal found elsewhere (IMAP checks): record and respond, unless the same one is open."""
        if not signal.mailbox:
            stored, _after = await self._raise(signal, None, None)
            return stored
        async with self._lock(signal.mailbox):
            track, state = await self._ledger.track(signal.mailbox)
            stored, _after = await self._raise(signal, track, state)
            return stored

    async def external_alert(self, alert: ExternalAlert) -> list[StoredSignal]:
        """An alert posted to the webhook: one signal per mailbox named (or one about the primary)."""
        kind = SignalKind.PRIMARY_COMPROMISE if alert.scope is AlertScope.PRIMARY else SignalKind.EXTERNAL_ALERT
        severity = alert.severity or self._severity(kind)
        evidence = tuple(
            line
            for line in (
                f"source: {alert.source}",
                f"reference: {alert.reference}" if alert.reference else "",
                alert.description,
                *alert.evidence,
            )
            if line
        )
        now = self.clock()
        key = alert.reference or alert.title
        stored: list[StoredSignal] = []
        targets = [""] if alert.scope is AlertScope.PRIMARY else [self.mailbox_for(m) for m in alert.mailboxes]
        for mailbox in targets:
            signal = Signal(kind, mailbox, severity, alert.title, evidence, now, f"webhook:{alert.source}", key=key)
            if mailbox:
                result = await self.report(signal)
            else:
                result, _after = await self.responder.handle(signal, None)
            if result is not None:
                stored.append(result)
        return stored
