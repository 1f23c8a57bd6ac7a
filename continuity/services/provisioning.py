"""Provisioning mailboxes: single adds and idempotent CSV imports that keep the good rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from continuity.core.mailbox_rows import parse_mailbox_csv
from continuity.core.models import UpsertOutcome
from continuity.errors import InvalidInputError
from continuity.store.protocol import MailboxRepository


@dataclass
class ImportReport:
    """What an import did: outcomes counted, and each bad row with its line number."""

    outcomes: Counter[UpsertOutcome] = field(default_factory=Counter)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Rows that were stored (created, updated or already identical)."""
        return sum(self.outcomes.values())

    def summary(self) -> str:
        """One sentence for the operator."""
        parts = ", ".join(f"{self.outcomes[outcome]} {outcome.value}" for outcome in UpsertOutcome)
        text = f"{self.imported} mailboxes imported ({parts})"
        if self.errors:
            text += f"; {len(self.errors)} rows rejected"
        return text + "."


async def import_mailboxes(mailboxes: MailboxRepository, csv_text: str, domains: list[str]) -> ImportReport:
    """Upsert every valid row of csv_text; bad rows are reported by line and skipped.

    Raises ValueError when the header row is unusable (then nothing is imported).
    """
    report = ImportReport()
    for row in list(parse_mailbox_csv(csv_text, domains)):
        if row.mailbox is None:
            report.errors.append((row.line, row.error or "invalid row"))
            continue
        try:
            outcome = await mailboxes.upsert(row.mailbox, keep_password=True)
        except InvalidInputError as exc:
            report.errors.append((row.line, str(exc)))
            continue
        report.outcomes[outcome] += 1
    return report
