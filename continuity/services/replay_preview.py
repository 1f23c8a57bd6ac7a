"""What a replay will deliver, and where: for ``continuity replay --dry-run`` and the confirmation after a compromise.

The dry run plans without writing anything: every standby row still to replay, the folder
and flags it would get on the primary, and what the filter pipeline (with the rules as
they are now, learning nothing) and the compromise rule would hold. The confirmation
shows the planned run as it is stored; confirming is recorded in the run and the audit log.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from continuity.config.settings import Settings
from continuity.core.audit import AuditRecord
from continuity.core.replay_journal import OPEN, ItemState
from continuity.core.replay_plan import Candidate, PlannedItem
from continuity.core.replay_records import JournalItem, ReplayRun, RunKind
from continuity.services.filtering import FilterPipeline
from continuity.services.replay_gate import GateAction, ReplayGate
from continuity.services.replay_planner import COMPROMISE_REASON, PrimaryAddresses, ReplayPlanner
from continuity.services.replay_runs import RunKeeper
from continuity.store.protocol import Store

_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One message copy and what happens (or would happen) to it."""

    mailbox: str
    queue_id: str
    received_at: float
    sender: str
    subject: str
    folder: str
    flags: str
    action: str
    reason: str = ""


def _folder(components: tuple[str, ...]) -> str:
    return "/".join(part for part in components if part)


def _as_item(candidate: Candidate, planned: PlannedItem) -> JournalItem:
    return JournalItem(
        id=0, run_id=0, queue_id=candidate.queue_id, mailbox=candidate.mailbox, row_id=candidate.row_id,
        kind=planned.kind, channel=planned.channel, folder=planned.folder, flags=planned.flags,
        state=ItemState.PENDING, attempts=0, first_attempt_at=0.0, next_attempt_at=0.0, detail="", delivered_at=0.0,
        placed_folder="", placed_flags="", released=False, message_id=candidate.message_id, sha256=candidate.sha256,
        size=candidate.size, sender=candidate.sender, subject=candidate.subject, received_at=candidate.received_at,
        recipients=planned.recipients, standby_folder=candidate.folder, standby_flags=candidate.flags,
        standby_expunged=candidate.expunged, client_helo=candidate.client_helo,
        client_address=candidate.client_address,
    )  # fmt: skip


def _row(item: JournalItem, action: str, reason: str = "") -> PreviewRow:
    return PreviewRow(
        item.mailbox, item.queue_id, item.received_at, item.sender, item.subject, _folder(item.folder),
        " ".join(item.flags), action, reason,
    )  # fmt: skip


async def run_preview(store: Store, run: ReplayRun) -> list[PreviewRow]:
    """Every item of a stored run: what it will get (deliver), or why it is held."""
    rows = []
    for item in await store.replay.items(run.id, limit=_LIMIT):
        if item.state in OPEN:
            rows.append(_row(item, "deliver"))
        elif item.state is ItemState.HELD:
            rows.append(_row(item, "hold", item.detail))
        else:
            rows.append(_row(item, item.state.value, item.detail if item.state is ItemState.FAILED else ""))
    return rows


async def dry_run(store: Store, settings: Settings, pipeline: FilterPipeline | None) -> list[PreviewRow]:
    """What a replay now would do with every copy still to replay; writes nothing."""
    record = await store.failover.load()
    compromise = await RunKeeper(store, time.time).compromise_episode(record)
    primary = PrimaryAddresses(settings.primary.host, settings.replay.primary_networks)
    if compromise:
        await primary.refresh()
    planner = ReplayPlanner(store, settings.replay, primary)
    gate = ReplayGate(store, pipeline)
    items: list[JournalItem] = []
    held: dict[str, str] = {}
    for candidate in await store.replay.candidates(_LIMIT):
        verdict = await store.verdicts.get(candidate.queue_id)
        item = dataclasses.replace(
            _as_item(candidate, planner.plan(candidate)), stored_verdict=verdict.verdict.value if verdict else ""
        )
        items.append(item)
        if compromise and primary.matches(candidate.client_address):
            held[candidate.queue_id] = COMPROMISE_REASON
    latest = await store.replay.latest_run()
    if latest is not None:
        items += await store.replay.items(latest.id, states=tuple(OPEN), limit=_LIMIT)
    rows = []
    for item in items:
        if item.queue_id not in held:
            decision, _result = await gate.evaluate(item)
            if decision.action is GateAction.HOLD:
                held[item.queue_id] = decision.reason
            elif decision.action is GateAction.DEFER:
                rows.append(_row(item, "defer", decision.reason))
                continue
        reason = held.get(item.queue_id)
        rows.append(_row(item, "hold", reason) if reason else _row(item, "deliver"))
    return rows


async def confirm_restoration(store: Store, actor: str, note: str) -> ReplayRun | None:
    """Record an operator's confirmation of the restoration run awaiting one; None when none waits."""
    run = await store.replay.latest_run(RunKind.RESTORATION)
    if run is None or not run.needs_confirmation:
        return None
    confirmed = await store.replay.confirm_run(run.id, actor, time.time())
    await store.audit.append(
        AuditRecord.of(actor, "replay.confirm", note or "replay after a compromise confirmed", {"run": run.id})
    )
    return confirmed
