"""Delivering claimed journal items: IMAP APPEND (or a move after a webmail change) and SMTP.

A batch is a set of items already marked ``delivering`` on disk. For each item the
filter decision comes first; then, when an earlier attempt may have reached the primary
(a crash, a timeout), the primary is searched for that copy (same Message-ID and the
same content hash in the replay marker) before anything is sent. Each outcome is made
durable (group commit) before the worker moves on. Every delivery passes the flow
control first: a slot in the window, then the rate and any pause. When the primary's reply
breaks a bound (continuity.adapters.imap_guard) the pass gives up on it: the item in hand
and the rest of the batch are deferred by the retry rules and ``gave_up`` says why.

IMAP deliveries also pass the mailbox's own flow control (continuity.core.replay_mailbox_flow):
its rate slot first; when the mailbox is throttled (Exchange's per-mailbox budget) or its
connection breaks, that mailbox alone pauses (for the server's suggested backoff, or doubling
pauses) and the rest of its batch waits for the pause, so the worker moves on to other
mailboxes. A message over ``max_message_size`` fails at once with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from continuity.adapters.imap_append import ImapSessionError, ImapTarget, MailboxSession
from continuity.adapters.smtp_kept_session import SmtpSession
from continuity.core.replay_flow import FlowControl
from continuity.core.replay_journal import Attempt, OutcomeKind, RetryPolicy, classify_smtp, resolve
from continuity.core.replay_mailbox_flow import MailboxFlows, MailboxLimits, mailbox_throttle
from continuity.core.replay_plan import Candidate, FolderMap, join_path, marker_value, plan_item
from continuity.core.replay_records import ItemUpdate, JournalItem
from continuity.services.replay_gate import LOOK_AHEAD, READ_AHEAD, GateAction, ReplayGate
from continuity.store.group_commit import GroupCommitter

log = logging.getLogger("continuity.replay")

# A mailbox throttled with a backoff this short (seconds) is waited for by its worker, which then
# tries the same message again (at most _SHORT_WAITS times in a row); a longer one releases the
# batch so that the worker replays other mailboxes meanwhile.
_WAIT_IN_PLACE = 2.0
_SHORT_WAITS = 5


class FlowSlots:
    """Admits deliveries into the flow control's window, then waits out its rate and pauses."""

    def __init__(self, flow: FlowControl, clock: Callable[[], float] = time.monotonic) -> None:
        self.flow = flow
        self._clock = clock
        self._in_flight = 0
        self._condition = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for a slot."""
        async with self._condition:
            await self._condition.wait_for(lambda: self._in_flight < self.flow.permits)
            self._in_flight += 1
        delay = self.flow.delay(self._clock())
        if delay > 0:
            await asyncio.sleep(delay)

    async def release(self) -> None:
        """Give the slot back."""
        async with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def observe(self, attempt: Attempt) -> float:
        """Feed an outcome to the flow control; returns the pause now in force (0 when none)."""
        now = self._clock()
        if attempt.kind is OutcomeKind.DELIVERED:
            self.flow.succeeded(attempt.latency, now)
        elif attempt.kind is OutcomeKind.THROTTLED:
            return self.flow.throttled(now, attempt.detail)
        return max(0.0, self.flow.paused_until - now)


@dataclass
class DeliveryContext:
    """Everything a worker needs."""

    gate: ReplayGate
    slots: FlowSlots
    committer: GroupCommitter[ItemUpdate]
    policy: RetryPolicy
    folders: FolderMap
    imap: ImapTarget | None
    check_always: bool
    clock: Callable[[], float] = time.time
    stopping: Callable[[], bool] = lambda: False
    mailboxes: MailboxFlows = field(default_factory=lambda: MailboxFlows(MailboxLimits(0.0, 1.0, 300.0)))
    max_message_size: int = 0  # bytes; 0: no limit
    delivered: int = 0
    bytes_sent: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # Outcomes being committed; a worker waits for its batch's before it claims more.
    pending: list[asyncio.Task[None]] = field(default_factory=list)
    # Why this pass gave up on the primary (a reply broke a bound); empty while it has not.
    gave_up: str = ""

    def give_up(self, exc: ImapSessionError) -> None:
        """Note that the primary's reply broke a bound: the pass stops claiming work."""
        if exc.give_up is not None and not self.gave_up:
            self.gave_up = exc.detail
            log.error("replay gives up on the primary for now: %s", exc.detail)

    async def flush(self) -> None:
        """Wait until every outcome settled so far is on disk (StorageError when one could not be written)."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)

    async def settle(self, item: JournalItem, attempt: Attempt, placed: str = "", pause: float = 0.0) -> None:
        """Resolve attempt into the item's new state and start making it durable (group commit).

        The worker goes on with its next message meanwhile and waits for the batch's outcomes
        (flush) before it claims more. A crash before the commit leaves the item "delivering",
        which the next run checks on the primary before delivering again.
        """
        now = self.clock()
        resolution = resolve(
            attempt,
            attempts=item.attempts + 1,
            first_attempt_at=item.first_attempt_at or now,
            now=now,
            policy=self.policy,
            throttle_delay=pause,
        )
        self.outcomes[attempt.kind.value] = self.outcomes.get(attempt.kind.value, 0) + 1
        if attempt.kind in (OutcomeKind.DELIVERED, OutcomeKind.ALREADY_THERE):
            self.delivered += 1
        update = ItemUpdate(
            item.id, resolution.state, now, resolution.detail, attempt.code, resolution.next_attempt_at,
            placed, " ".join(self.target(item)[1]) if placed else "",
        )  # fmt: skip
        self.pending.append(asyncio.ensure_future(self.committer.submit(update)))

    def target(self, item: JournalItem) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The folder path and flags the standby has for item now."""
        candidate = Candidate(
            item.row_id, item.mailbox, item.queue_id, item.standby_folder, item.standby_flags, item.standby_expunged,
            item.client_helo, item.client_address, item.sender, item.message_id, item.subject, item.sha256, item.size,
            item.received_at, item.recipients,
        )  # fmt: skip
        planned = plan_item(candidate, self.folders, smtp_for_received=False)
        return planned.folder, planned.flags


async def _imap_one(context: DeliveryContext, session: MailboxSession, item: JournalItem) -> tuple[Attempt, str]:
    components, flags = context.target(item)
    folder = join_path(components, session.delimiter)
    marker = marker_value(item.queue_id, item.sha256)
    if item.placed_folder:
        # Delivered before, then moved or flagged in the webmail: move the copy, set its flags.
        uid = await session.find(item.placed_folder, item.message_id, marker)
        if uid is not None:
            if item.placed_folder == folder and item.placed_flags == " ".join(flags):
                return Attempt(OutcomeKind.ALREADY_THERE, "already as the webmail has it"), folder
            return await session.relocate(item.placed_folder, uid, folder, flags), folder
    if item.attempts > 0 or context.check_always:
        planned = join_path(item.folder, session.delimiter)
        for place in dict.fromkeys((folder, planned)):
            uid = await session.find(place, item.message_id, marker)
            if uid is not None:
                await session.relocate(place, uid, folder, flags)
                return Attempt(OutcomeKind.ALREADY_THERE, f"an earlier attempt's copy found in {place}"), folder
    data = await context.gate.wire(item)
    context.bytes_sent += len(data)
    return await session.append(folder, data, flags, item.received_at), folder


async def imap_batch(
    context: DeliveryContext, session: MailboxSession | None, mailbox: str, items: list[JournalItem]
) -> MailboxSession | None:
    """Deliver items of one mailbox over IMAP; returns the session to reuse (None when it broke).

    Returns once every outcome of the batch is on disk.
    """
    try:
        return await _imap_items(context, session, mailbox, items)
    finally:
        await context.flush()


async def _imap_items(
    context: DeliveryContext, session: MailboxSession | None, mailbox: str, items: list[JournalItem]
) -> MailboxSession | None:
    assert context.imap is not None
    if session is not None and session.mailbox != mailbox:
        await session.close()
        session = None
    for index, item in enumerate(items):
        if context.stopping():
            for rest in items[index:]:
                await context.settle(rest, Attempt(OutcomeKind.DEFERRED, "replay stopped"))
            break
        await context.gate.read_ahead(items[index : index + READ_AHEAD])
        context.gate.look_ahead(items[index + 1 : index + 1 + LOOK_AHEAD])
        decision = await context.gate.decide(item)
        if decision.action is GateAction.HOLD:
            continue
        if decision.action is GateAction.DEFER:
            await context.settle(item, Attempt(OutcomeKind.DEFERRED, decision.reason))
            continue
        if context.max_message_size and item.size > context.max_message_size:
            reason = (
                f"message of {item.size} bytes is over [replay] max_message_size ({context.max_message_size} bytes); "
                "not replayed (copy it by hand, or raise the primary's limit and the setting)"
            )
            await context.settle(item, Attempt(OutcomeKind.FAILED, reason))
            log.warning("replay %s -> %s: %s", item.queue_id, mailbox, reason)
            continue
        short_waits = 0
        while True:
            wait = context.mailboxes.delay(mailbox, time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            await context.slots.acquire()
            try:
                if session is None:
                    try:
                        session = await MailboxSession.open(context.imap, mailbox)
                    except ImapSessionError as exc:
                        # No session for this mailbox now (refused login, unreachable): the whole batch waits.
                        context.give_up(exc)
                        pause = context.slots.observe(Attempt(exc.kind, exc.detail))
                        for rest in items[index:]:
                            await context.settle(rest, Attempt(exc.kind, exc.detail), "", pause)
                        log.info("replay into %s: %s (%s)", mailbox, exc.kind.value, exc.detail)
                        return None
                attempt, placed = await _imap_one(context, session, item)
            except ImapSessionError as exc:
                await _drop(session)
                session = None
                context.give_up(exc)
                # The server hung up (Exchange does after repeated errors): reconnect after a pause, doubling.
                pause = context.mailboxes.throttled(mailbox, time.monotonic(), f"connection lost: {exc.detail}")
                await context.settle(item, Attempt(exc.kind, exc.detail), "", pause)
                for rest in items[index + 1 :]:
                    await context.settle(rest, Attempt(OutcomeKind.THROTTLED, "waiting to reconnect"), "", pause)
                log.info("replay into %s: %s (%s); reconnecting in %gs", mailbox, exc.kind.value, exc.detail, pause)
                return None
            finally:
                await context.slots.release()
            if attempt.kind is OutcomeKind.THROTTLED and mailbox_throttle(attempt.detail):
                pause = context.mailboxes.throttled(mailbox, time.monotonic(), attempt.detail)
                if pause <= _WAIT_IN_PLACE and short_waits < _SHORT_WAITS:
                    short_waits += 1  # a short backoff: wait it out on this mailbox (delay() does) and retry
                    continue
                for rest in items[index:]:
                    await context.settle(
                        rest, attempt if rest is item else Attempt(attempt.kind, "mailbox throttled"), "", pause
                    )
                log.info("replay into %s throttled: %s; this mailbox waits %gs", mailbox, attempt.detail, pause)
                return session
            break
        pause = context.slots.observe(attempt)
        delivered = attempt.kind in (OutcomeKind.DELIVERED, OutcomeKind.ALREADY_THERE)
        if delivered:
            context.mailboxes.succeeded(mailbox, time.monotonic())
        await context.settle(item, attempt, placed if delivered else "", pause)
        if not delivered:
            log.info("replay %s -> %s: %s (%s)", item.queue_id, mailbox, attempt.kind.value, attempt.detail)
    return session


async def _drop(session: MailboxSession | None) -> None:
    if session is not None:
        await session.close()


async def _smtp_already_there(context: DeliveryContext, item: JournalItem) -> bool:
    """After an interrupted SMTP attempt: is the message in the mailbox's Inbox already?"""
    if context.imap is None:
        return False
    try:
        session = await MailboxSession.open(context.imap, item.mailbox)
    except ImapSessionError:
        return False
    try:
        folder = join_path((context.folders.inbox,), session.delimiter)
        return await session.find(folder, item.message_id, marker_value(item.queue_id, item.sha256)) is not None
    except ImapSessionError:
        return False
    finally:
        await session.close()


async def smtp_batch(context: DeliveryContext, session: SmtpSession, items: list[JournalItem]) -> None:
    """Deliver items over SMTP, one transaction per message for all its due mailboxes; outcomes on disk on return."""
    try:
        await _smtp_items(context, session, items)
    finally:
        await context.flush()


async def _smtp_items(context: DeliveryContext, session: SmtpSession, items: list[JournalItem]) -> None:
    by_message: dict[str, list[JournalItem]] = {}
    for item in items:
        by_message.setdefault(item.queue_id, []).append(item)
    groups = list(by_message.values())
    for index, group in enumerate(groups):
        if context.stopping():
            for rest in group:
                await context.settle(rest, Attempt(OutcomeKind.DEFERRED, "replay stopped"))
            continue
        await context.gate.read_ahead([later[0] for later in groups[index : index + READ_AHEAD]])
        context.gate.look_ahead([later[0] for later in groups[index + 1 : index + 1 + LOOK_AHEAD]])
        decision = await context.gate.decide(group[0])
        if decision.action is GateAction.HOLD:
            continue
        if decision.action is GateAction.DEFER:
            for item in group:
                await context.settle(item, Attempt(OutcomeKind.DEFERRED, decision.reason))
            continue
        sending = []
        for item in group:
            if (item.attempts > 0 or context.check_always) and await _smtp_already_there(context, item):
                await context.settle(
                    item, Attempt(OutcomeKind.ALREADY_THERE, "an earlier attempt's copy is in the Inbox")
                )
            else:
                sending.append(item)
        if not sending:
            continue
        data = await context.gate.wire(sending[0])
        await context.slots.acquire()
        started = time.monotonic()
        try:
            results = await session.send(sending[0].sender, [item.mailbox for item in sending], data)
        finally:
            await context.slots.release()
        latency = time.monotonic() - started
        context.bytes_sent += len(data)
        answers = {result.recipient: result for result in results}
        throttled = False
        for item in sending:
            result = answers.get(item.mailbox)
            code = result.code if result is not None else 0
            text = f"{code} {result.text}".strip() if result is not None else "no answer for this recipient"
            kind = classify_smtp(code) if code else OutcomeKind.DEFERRED
            throttled = throttled or kind is OutcomeKind.THROTTLED
            attempt = Attempt(kind, f"SMTP {session.target}: {text}"[:300], code, latency)
            pause = context.slots.observe(attempt)
            await context.settle(item, attempt, "", pause)
        if throttled:
            # Back off for real: a new connection after the pause (a loaded server may shed this one).
            await session.close()
