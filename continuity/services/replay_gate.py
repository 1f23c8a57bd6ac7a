"""What may go to the primary: the filter pipeline again, at replay time, and the bytes that are sent.

Each message is judged once per delivery pass (every worker delivering one of its copies
waits for the same decision): the pipeline runs with the rules as they are now
(direction REPLAY, nothing learned); quarantine or reject holds the message for review,
a fail-closed stage that cannot answer defers it. A message an operator released from
quarantine is delivered as released. Holding writes the verdict (the quarantine shows
why), turns the message and its open journal items to held, and goes to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from continuity.core.audit import AuditRecord
from continuity.core.filter_records import StoredVerdict
from continuity.core.pipeline import Direction, Envelope, Finding, Verdict
from continuity.core.replay_plan import ItemKind, wire_message
from continuity.core.replay_records import JournalItem
from continuity.errors import ContinuityError
from continuity.services.filtering import Evaluator, PipelineResult
from continuity.store.protocol import Store

log = logging.getLogger("continuity.replay")

COMPROMISE_FINDING = "replay.from_compromised_primary"
LOOK_AHEAD = 8  # messages of a batch judged ahead of the one being delivered
READ_AHEAD = 32  # messages whose bodies are read together (read_ahead)
_READ_AHEAD_BYTES = 2 << 20  # at most this much read in one go (but always one body)
# Bodies kept in memory for their decisions and deliveries: the read-ahead and look-ahead of
# every worker (20 x 40 messages of 10 KB is 8 MB); a body evicted early is read again.
_BODY_CACHE_BYTES = 16 << 20
# Decisions kept for the later copies of their message; the oldest finished ones are dropped
# beyond this (a copy claimed much later is judged again), so a pass of millions of messages
# holds a bounded number of them.
_DECISIONS_KEPT = 8192


class GateAction(StrEnum):
    """What to do with a message."""

    DELIVER = "deliver"
    HOLD = "hold"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The decision and its sentence."""

    action: GateAction
    reason: str = ""


def compromise_verdict(client_address: str, at: float) -> StoredVerdict:
    """The verdict stored for a message held because it came from the compromised primary."""
    finding = Finding(COMPROMISE_FINDING, 0.0, "came from the primary while it was compromised", (client_address,))
    return StoredVerdict(
        verdict=Verdict.QUARANTINE,
        score=0.0,
        direction=Direction.REPLAY,
        evaluated_at=at,
        findings=(finding,),
        stages=(),
        reasons=(finding.message,),
    )


async def hold_message(
    store: Store, queue_id: str, verdict: StoredVerdict, reason: str, details: dict[str, object]
) -> None:
    """Hold a message from the primary: verdict, states, audit entry."""
    now = time.time()
    await store.verdicts.record(queue_id, verdict)
    await store.replay.hold(queue_id, reason, now)
    try:
        await store.audit.append(AuditRecord.of("replayer", "replay.hold", reason, {"queue_id": queue_id, **details}))
    except ContinuityError as exc:
        log.error("message %s is held but its audit entry failed: %s", queue_id, exc)
    log.warning("replay: message %s held for review: %s", queue_id, reason)


class ReplayGate:
    """Decisions and wire bytes for one delivery pass (forget() between passes)."""

    def __init__(self, store: Store, pipeline: Evaluator | None) -> None:
        self._store = store
        self.pipeline = pipeline
        self._decisions: OrderedDict[str, asyncio.Task[GateDecision]] = OrderedDict()
        self._unfinished: list[asyncio.Task[GateDecision]] = []  # of an earlier pass, judged ahead
        # Bodies read for a decision, kept for the deliveries right after it (a message's copies are claimed together).
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self.held = 0

    async def drain(self) -> None:
        """Wait for the decisions still being made (judged ahead, then the replay stopped)."""
        await asyncio.gather(*self._unfinished, *self._decisions.values(), return_exceptions=True)
        self._unfinished = []

    def forget(self) -> None:
        """Start a new pass: rules may have changed."""
        self._unfinished = [task for task in self._decisions.values() if not task.done()]
        self._decisions = OrderedDict()
        self._bodies.clear()
        self._cached_bytes = 0

    async def body(self, item: JournalItem) -> bytes:
        """The stored body of item's message (read once for its decision and its deliveries)."""
        body = self._bodies.get(item.sha256)
        if body is None:
            body = await self._store.blobs.read(item.sha256)
            self._keep(item.sha256, body)
        return body

    async def read_ahead(self, items: Sequence[JournalItem]) -> None:
        """Read the bodies of the next messages (items, in delivery order) together, when they are needed.

        When a body of the next LOOK_AHEAD + 1 messages is not in memory, the missing
        bodies of up to READ_AHEAD messages (at most _READ_AHEAD_BYTES) are read in one
        hand-over to a thread: one per message cost the replay a fifth of its CPU.
        """
        if all(item.sha256 in self._bodies for item in items[: LOOK_AHEAD + 1]):
            return
        wanted: list[str] = []
        size = 0
        for item in items[:READ_AHEAD]:
            if item.sha256 in self._bodies or item.sha256 in wanted:
                continue
            if wanted and size + item.size > _READ_AHEAD_BYTES:
                break
            wanted.append(item.sha256)
            size += item.size
        for sha256, body in (await self._store.blobs.read_many(wanted)).items():
            self._keep(sha256, body)

    def _keep(self, sha256: str, body: bytes) -> None:
        if sha256 in self._bodies:
            return
        self._bodies[sha256] = body
        self._cached_bytes += len(body)
        while self._cached_bytes > _BODY_CACHE_BYTES and len(self._bodies) > 1:
            _, evicted = self._bodies.popitem(last=False)
            self._cached_bytes -= len(evicted)

    async def wire(self, item: JournalItem) -> bytes:
        """The bytes sent for item: replay marker, trace header block, the stored body."""
        trace = item.trace_header if item.kind is ItemKind.RECEIVED else b""
        return wire_message(item.queue_id, item.sha256, trace, await self.body(item))

    async def decide(self, item: JournalItem) -> GateDecision:
        """The decision for item's message (computed once per pass, shared by every copy)."""
        if self.pipeline is None or item.released:
            return GateDecision(GateAction.DELIVER, "filters disabled" if self.pipeline is None else "released")
        task = self._decision(item)
        if task.done():  # judged ahead (the usual case): no shield to set up
            return task.result()
        return await asyncio.shield(task)

    def look_ahead(self, items: Sequence[JournalItem]) -> None:
        """Start judging the messages delivered next, so their decisions are ready when their turn comes.

        With the filters in worker processes ([replay] filter_processes) this keeps the
        workers busy while the main process delivers.
        """
        if self.pipeline is None:
            return
        for item in items:
            if not item.released:
                self._decision(item)

    def _decision(self, item: JournalItem) -> asyncio.Task[GateDecision]:
        task = self._decisions.get(item.queue_id)
        if task is None:
            task = asyncio.ensure_future(self._judge(item))
            self._decisions[item.queue_id] = task
            while len(self._decisions) > _DECISIONS_KEPT:
                oldest = next(iter(self._decisions.values()))
                if not oldest.done():
                    break  # in flight: kept until it is done (at most the messages judged ahead)
                self._decisions.popitem(last=False)
        return task

    async def _judge(self, item: JournalItem) -> GateDecision:
        decision, result = await self.evaluate(item)
        if decision.action is GateAction.HOLD and result is not None:
            await hold_message(
                self._store,
                item.queue_id,
                result.stored(),
                decision.reason,
                {
                    "message_id": item.message_id,
                    "sender": item.sender,
                    "subject": item.subject,
                    "findings": [finding.code for r in result.results for finding in r.findings],
                },
            )
            self.held += 1
        return decision

    async def evaluate(self, item: JournalItem) -> tuple[GateDecision, PipelineResult | None]:
        """The decision for item's message, without acting on it (dry runs use this directly)."""
        if item.released:
            return GateDecision(GateAction.DELIVER, "released from quarantine by an operator"), None
        if self.pipeline is None:
            return GateDecision(GateAction.DELIVER, "filters disabled"), None
        if item.stored_verdict in (Verdict.QUARANTINE.value, Verdict.REJECT.value):
            # A queued message with a quarantine verdict was released by an operator.
            return GateDecision(GateAction.DELIVER, "released from quarantine by an operator"), None
        body = await self.body(item)
        local = item.kind is not ItemKind.RECEIVED
        envelope = Envelope(
            sender=item.sender,
            recipients=item.recipients or (item.mailbox,),
            direction=Direction.REPLAY,
            client_address=item.client_address,
            client_helo=item.client_helo,
            authenticated_user=item.mailbox if local else "",
        )
        result = await self.pipeline.evaluate_stored(envelope, item.sha256, body)
        if result.verdict in (Verdict.QUARANTINE, Verdict.REJECT):
            reason = f"judged {result.verdict.value} by the filters at replay: {result.public_reason}"
            return GateDecision(GateAction.HOLD, reason), result
        if result.verdict is Verdict.TEMPFAIL:
            failed = ", ".join(result.failed)
            return GateDecision(GateAction.DEFER, f"the filters could not decide now ({failed})"), result
        return GateDecision(GateAction.DELIVER, result.verdict.value), result
