"""One directory sync: read the source, plan the diff, check the guard, apply, audit, remember.

Applying never deletes: removed or disabled users become disabled mailboxes that keep their
messages. The cursor (DirSync cookie, USN, Graph delta links) advances only when every change
was applied, so a change that failed is read again next time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from continuity.core.audit import AuditRecord
from continuity.directory.core.diff import REMOVING, Change, ChangeKind, SyncPlan, plan_sync
from continuity.directory.core.guard import GuardVerdict, check_removals, removal_limit
from continuity.directory.core.links import SyncRun
from continuity.directory.core.records import SourceBatch
from continuity.directory.notice import GuardNotice
from continuity.errors import DirectorySourceError, InvalidInputError, NotFoundError
from continuity.store.protocol import Store

log = logging.getLogger("continuity.directory")

ACTOR = "directory-sync"
# The audit entry keeps at most this many changes (and says how many it left out).
AUDIT_CHANGES = 200


class DirectorySource(Protocol):
    """Active Directory or Entra ID: reads the users changed since a cursor."""

    @property
    def name(self) -> str:
        """ad or entra."""
        ...

    async def read(self, cursor: str) -> SourceBatch:
        """The batch since cursor ("" reads everyone); DirectorySourceError when the directory cannot be read."""
        ...


@dataclass
class SyncReport:
    """What a run did or would do."""

    source: str
    mode: str
    dry_run: bool
    guard: GuardVerdict
    changes: list[Change]
    counts: dict[str, int]
    applied: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """dry-run, refused, applied, or partial (some changes failed)."""
        if self.dry_run:
            return "dry-run"
        if not self.guard.allowed:
            return "refused"
        return "partial" if self.errors else "applied"

    def summary(self) -> str:
        """One sentence for the operator and the log."""
        counted = ", ".join(f"{count} {kind}" for kind, count in self.counts.items() if count)
        text = f"directory sync from {self.source} ({self.mode}): {self.outcome}; {counted or 'no changes'}"
        if not self.guard.allowed:
            text += f". {self.guard.sentence}"
        if self.errors:
            text += f"; {len(self.errors)} changes failed"
        return text

    def as_json(self) -> dict[str, object]:
        """The report as the CLI's --json prints it."""
        return {
            "source": self.source,
            "mode": self.mode,
            "outcome": self.outcome,
            "counts": self.counts,
            "removals": self.guard.removals,
            "removal_limit": self.guard.limit,
            "changes": [_change_json(change) for change in self.changes],
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _change_json(change: Change) -> dict[str, str]:
    return {
        "kind": change.kind.value,
        "address": change.address,
        "id": change.external_id,
        "detail": change.detail[:300],
    }


class DirectorySync:
    """Runs syncs from one source into the store."""

    def __init__(
        self,
        store: Store,
        source: DirectorySource,
        domains: list[str],
        max_removals: int | None,
        *,
        alert: Callable[[GuardNotice], None] | None = None,
        appliance: str = "",
        after_apply: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._source = source
        self._domains = domains
        self._max_removals = max_removals
        self._alert = alert
        self._appliance = appliance
        self._after_apply = after_apply

    async def run(self, *, dry_run: bool = False, allow_removals: bool = False) -> SyncReport:
        """One run; DirectorySourceError (recorded as a failed run) when the directory cannot be read."""
        repository = self._store.directory_sync
        cursor = await repository.cursor(self._source.name)
        try:
            batch = await self._source.read(cursor)
        except DirectorySourceError as exc:
            if not dry_run:
                await repository.record_run(SyncRun(time.time(), self._source.name, "-", "failed", str(exc), {}))
                details = {"source": self._source.name}
                await self._store.audit.append(AuditRecord.of(ACTOR, "directory.sync.failed", str(exc), details))
            raise
        links = await repository.links()
        mailboxes = {mailbox.address: mailbox for mailbox in await self._store.mailboxes.list()}
        plan = plan_sync(batch, links, mailboxes, self._domains)
        enabled = sum(1 for link in links.values() if (box := mailboxes.get(link.address)) is not None and box.enabled)
        guard = check_removals(plan.removals, removal_limit(self._max_removals, enabled), allow_removals)
        report = SyncReport(
            self._source.name, batch.mode, dry_run, guard, plan.changes, plan.counts(), warnings=list(batch.warnings)
        )
        if dry_run:
            return report
        if not guard.allowed:
            await self._refuse(report)
            return report
        await self._apply(plan, report)
        if not report.errors:
            await repository.set_cursor(self._source.name, batch.cursor)
        await self._store.audit.append(
            AuditRecord.of(ACTOR, "directory.sync", report.summary(), _audit_details(report, allow_removals))
        )
        await repository.record_run(
            SyncRun(time.time(), self._source.name, batch.mode, report.outcome, report.summary(), report.counts)
        )
        log.info("%s", report.summary())
        if self._after_apply is not None and any(change.kind is not ChangeKind.SKIP for change in plan.changes):
            await self._after_apply()
        return report

    async def _refuse(self, report: SyncReport) -> None:
        log.warning("%s", report.summary())
        details = _audit_details(report, False)
        await self._store.audit.append(AuditRecord.of(ACTOR, "directory.sync.refused", report.guard.sentence, details))
        previous = await self._store.directory_sync.runs(1)
        # The periodic sync meets the same refusal every interval: the admins hear of it once.
        repeated = bool(previous) and previous[0].outcome == "refused" and previous[0].summary == report.summary()
        await self._store.directory_sync.record_run(
            SyncRun(time.time(), report.source, report.mode, "refused", report.summary(), report.counts)
        )
        if self._alert is not None and not repeated:
            sample = tuple(change.address for change in report.changes if change.kind in REMOVING)[:20]
            self._alert(GuardNotice(self._appliance, report.source, report.guard.removals, report.guard.limit, sample))

    async def _apply(self, plan: SyncPlan, report: SyncReport) -> None:
        mailboxes = self._store.mailboxes
        for change in plan.changes:
            if change.kind is ChangeKind.SKIP or change.mailbox is None:
                continue
            try:
                if change.kind in REMOVING:
                    await mailboxes.set_enabled(change.address, False)
                else:
                    await mailboxes.upsert(change.mailbox, keep_password=True)
            except (InvalidInputError, NotFoundError) as exc:
                report.errors.append(f"{change.kind.value} {change.address}: {exc}")
                if change.kind is ChangeKind.CREATE:
                    plan.links.pop(change.external_id, None)
        report.applied = True
        await self._store.directory_sync.save_links(plan.links)


def _audit_details(report: SyncReport, allow_removals: bool) -> dict[str, object]:
    changes = [_change_json(change) for change in report.changes]
    return {
        "source": report.source,
        "mode": report.mode,
        "counts": report.counts,
        "removals": report.guard.removals,
        "removal_limit": report.guard.limit,
        "allow_removals": allow_removals,
        "changes": changes[:AUDIT_CHANGES],
        "changes_left_out": max(0, len(changes) - AUDIT_CHANGES),
        "errors": report.errors[:50],
    }
