"""The end of a replay run (verification, manifest) and the replay's upkeep (warnings, alerts, pruning).

Verification lists, per mailbox and folder, the replay markers on the primary and checks
that every delivered copy is there exactly once. A copy missing from its folder is looked
for in the mailbox's other folders (a user may have filed it on the primary already);
one found nowhere is reopened and delivered again. Duplicates are reported, never deleted.

The manifest (JSON Lines: every message's ids and sha256, counts by outcome per mailbox,
the totals) is streamed from the journal to a file under the data directory, made durable
(temporary file, fsync, rename, directory fsync) and linked from an audit entry with its
sha256 (replay_manifest_file).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from continuity.adapters.imap_append import ImapTarget, MailboxSession
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.notify import NotifySettings
from continuity.config.outbound import OutboundSettings
from continuity.config.settings import Settings
from continuity.core.audit import AuditRecord
from continuity.core.delivery import DeliveryStatus
from continuity.core.replay_journal import ItemState
from continuity.core.replay_manifest import Verification
from continuity.core.replay_records import JournalItem, Placement, ReplayRun
from continuity.core.replay_settlement import Reconciliation
from continuity.errors import ContinuityError
from continuity.services.replay_manifest_file import write_manifest
from continuity.store.protocol import Store

log = logging.getLogger("continuity.replay")

_WARN_EVERY = 60.0
_PRUNE_EVERY = 3600.0


async def verify_run(store: Store, run: ReplayRun, imap: ImapTarget | None) -> tuple[Verification, list[int]]:
    """Check the primary for every delivered IMAP copy of run; returns the findings and the ids to redo.

    One mailbox at a time, so memory follows the largest mailbox, not the run. Raises
    ImapSessionError when the primary cannot be reached (verify again later).
    """
    mailboxes = await store.replay.placement_mailboxes(run.id)
    if not mailboxes:
        return Verification(), []
    if imap is None:
        return Verification(skipped="no IMAP master user is configured"), []
    duplicates: list[str] = []
    moved: list[str] = []
    missing_ids: list[int] = []
    folders = checked = 0
    for mailbox in mailboxes:
        by_folder: dict[str, list[Placement]] = defaultdict(list)
        for placement in await store.replay.placements(run.id, mailbox):
            by_folder[placement.folder].append(placement)
            checked += 1
        session = await MailboxSession.open(imap, mailbox)
        try:
            missing: list[Placement] = []
            for folder, expected in by_folder.items():
                folders += 1
                counts = Counter(await session.markers(folder) or [])
                for placement in expected:
                    seen = counts[placement.marker]
                    if seen == 0:
                        missing.append(placement)
                    elif seen > 1:
                        duplicates.append(f"{mailbox} {folder}: {placement.marker} x{seen}")
            if missing:
                elsewhere: Counter[str] = Counter()
                for folder in await session.folders():
                    if folder not in by_folder:
                        elsewhere.update(await session.markers(folder) or [])
                for placement in missing:
                    if elsewhere[placement.marker]:
                        moved.append(f"{mailbox}: {placement.marker}")
                    else:
                        missing_ids.append(placement.item_id)
        finally:
            await session.close()
    return Verification(checked, folders, tuple(duplicates), tuple(moved)), missing_ids


async def _not_reconciled(store: Store, run: ReplayRun, reconciled: Reconciliation) -> str:
    """The run cannot be complete: copies without a final outcome are planned (again) and delivered."""
    requeued = await store.replay.requeue_unsettled() if reconciled.replayed_without_copy else 0
    if reconciled.unplanned or requeued:
        await store.replay.restart_planning(run.id)
    sentence = (
        f"run {run.id} is not complete: {reconciled.unaccounted} of {reconciled.copies} standby copies have no "
        f"final outcome ({reconciled.unplanned} not planned, {reconciled.open} still open"
        + (f", {requeued} message(s) marked replayed too early are queued again" if requeued else "")
        + ")"
    )
    log.warning("replay: %s; planning again from the first copy", sentence)
    return sentence


class ReplayAlerts:
    """Tells the admins (mail through the standby's outbound path, the log, the audit log)."""

    def __init__(self, store: Store, notify: NotifySettings, outbound: OutboundSettings, hostname: str) -> None:
        self._store = store
        self._notify = notify
        self._hostname = hostname
        self._mail = SmtpDelivery(outbound, hostname) if notify.admin_emails else None

    async def send(self, action: str, subject: str, text: str, details: dict[str, object]) -> None:
        """Log, audit and mail one alert; failures to mail are logged, never raised."""
        log.warning("replay alert: %s", subject)
        try:
            await self._store.audit.append(AuditRecord.of("replayer", action, subject, details))
        except ContinuityError as exc:
            log.error("audit entry for '%s' failed: %s", subject, exc)
        if self._mail is None:
            return
        sender = self._notify.from_address or f"continuity@{self._hostname}"
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(self._notify.admin_emails)
        message["Subject"] = f"[continuity {self._hostname}] {subject}"
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._hostname)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        try:
            async with asyncio.timeout(self._notify.timeout):
                report = await self._mail.deliver(sender, list(self._notify.admin_emails), bytes(message))
        except Exception as exc:  # an alert must never stop the replay
            log.error("alert mail '%s' could not be sent: %s", subject, exc)
            return
        for result in report.results:
            if result.status is not DeliveryStatus.DELIVERED:
                log.error("alert mail to %s %s: %d %s", result.recipient, result.status.value, result.code, result.text)


async def complete_run(
    store: Store, run: ReplayRun, imap: ImapTarget | None, settings: Settings, alerts: ReplayAlerts, now: float
) -> str:
    """Reconcile, verify, write the manifest, complete run; returns what happened (or why it is not complete yet).

    Raises ImapSessionError when the primary cannot be reached for the verification.
    """
    reconciled = await store.replay.reconciliation()
    if not reconciled.complete:
        return await _not_reconciled(store, run, reconciled)
    verification, missing = await verify_run(store, run, imap)
    if missing:
        await store.replay.reopen(missing, run.id, "not found on the primary at verification", now)
        log.warning("replay: %d delivered copy(ies) not found on the primary; delivering again", len(missing))
        return f"{len(missing)} copy(ies) missing on the primary at verification are delivered again"
    directory = settings.replay.manifest_dir or settings.data_dir / "replay"
    path, digest, summary = await write_manifest(
        store, directory, run, verification, method=settings.replay.method.value, at=now
    )
    await store.replay.finish_run(run.id, now, str(path), digest)
    totals = summary.totals
    sentence = (
        f"{run.kind.value} run {run.id} complete: {totals['delivered']} delivered, {totals['held']} held, "
        f"{totals['failed']} failed in {summary.mailboxes} mailbox(es)"
    )
    details: dict[str, object] = {
        "run": run.id,
        "manifest": str(path),
        "sha256": digest,
        "totals": totals,
        "duplicates": len(verification.duplicates),
        "verified_copies": verification.checked,
        "reconciled_copies": reconciled.copies,
    }
    await store.audit.append(AuditRecord.of("replayer", "replay.complete", sentence, details))
    log.warning("replay: %s; manifest %s", sentence, path)
    if totals["failed"] or verification.duplicates:
        failed = await store.replay.items(run.id, states=(ItemState.FAILED,), limit=100)
        lines = [f"  {r.mailbox}: {r.subject[:80]!r} ({r.queue_id}): {r.detail}" for r in failed[:100]]
        await alerts.send(
            "replay.failures",
            f"replay run {run.id}: {totals['failed']} failed, {len(verification.duplicates)} duplicate(s)",
            "\n".join([f"{sentence}.", f"Manifest: {path}", "", *lines, *verification.duplicates[:100]]) + "\n",
            {"run": run.id, "manifest": str(path)},
        )
    return sentence


class Upkeep:
    """Warnings before anything is given up, and pruning of replayed copies past the retention."""

    def __init__(self, store: Store, settings: Settings, alerts: ReplayAlerts) -> None:
        self._store = store
        self._settings = settings
        self._alerts = alerts
        self._last_warn = 0.0
        self._last_prune = 0.0

    async def run(self, now: float) -> None:
        """Do what is due (warnings every minute, pruning every hour)."""
        replay = self._settings.replay
        # Often enough that a warning always comes well before the give-up.
        if now - self._last_warn >= min(_WARN_EVERY, max(1.0, replay.warn_before / 10)):
            self._last_warn = now
            items = await self._store.replay.unwarned_deferred(now - (replay.give_up_after - replay.warn_before))
            if items:
                await self.warn(items)
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            pruned = await self._store.replay.prune_replayed(now - replay.keep_delivered_days * 86400.0)
            if pruned:
                log.info("replay: pruned %d replayed message(s) past the retention", pruned)

    async def warn(self, items: list[JournalItem]) -> None:
        """Warn the admins that items will be given up, once per item."""
        give_up = self._settings.replay.give_up_after / 86400
        lines = [f"  {i.mailbox}: {i.subject[:80]!r} (queue id {i.queue_id}): {i.detail}" for i in items[:50]]
        await self._alerts.send(
            "replay.warning",
            f"{len(items)} message(s) could not be replayed into the primary yet and will be given up "
            f"after {give_up:g} days of retries",
            "These messages are kept on the standby; the replay keeps retrying until then:\n\n" + "\n".join(lines),
            {"queue_ids": [item.queue_id for item in items], "mailboxes": sorted({item.mailbox for item in items})},
        )
        await self._store.replay.mark_warned([item.id for item in items])
