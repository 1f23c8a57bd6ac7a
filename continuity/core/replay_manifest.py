"""The manifest of a replay run, as JSON Lines: the run, every message, counts per mailbox, the totals.

Pure: the service feeds it the journal's rows a page at a time and writes each page's
lines as they come (continuity.services.replay_manifest_file), so a run of millions of
messages is written in memory bounded by the page, not by the run. The file is one JSON
object per line, each with a ``type``:

* ``run``: the run's id, kind, method, times, compromise and confirmation;
* ``message``: one per journal item (mailbox, ids, sha256, outcome, where it went);
* ``mailbox``: one per mailbox, its counts by outcome;
* ``summary`` (the last line): the totals, the verification's findings, when it finished.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from continuity.core.replay_journal import ItemState
from continuity.core.replay_records import ManifestRow, ReplayRun


@dataclass(frozen=True, slots=True)
class Verification:
    """What the check of the primary found after the queue drained."""

    checked: int = 0
    folders: int = 0
    duplicates: tuple[str, ...] = ()
    moved_on_primary: tuple[str, ...] = ()
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """Totals for the audit entry and the CLI."""

    totals: dict[str, int] = field(default_factory=dict)
    mailboxes: int = 0


def _iso(timestamp: float) -> str | None:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds") if timestamp else None


def encode_line(document: dict[str, object]) -> bytes:
    """One line of the file: compact JSON with sorted keys and a newline."""
    return (json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def run_line(run: ReplayRun, *, method: str) -> dict[str, object]:
    """The first line: the run."""
    return {
        "type": "run",
        "run": run.id,
        "kind": run.kind.value,
        "method": method,
        "started_at": _iso(run.started_at),
        "compromise": run.compromise,
        "confirmed_by": run.confirmed_by or None,
        "confirmed_at": _iso(run.confirmed_at),
    }


def message_line(row: ManifestRow) -> dict[str, object]:
    """The line of one journal item."""
    return {
        "type": "message",
        "mailbox": row.mailbox,
        "queue_id": row.queue_id,
        "message_id": row.message_id,
        "sha256": row.sha256,
        "outcome": row.state.value,
        "kind": row.kind.value,
        "channel": row.channel.value,
        "folder": row.folder,
        "flags": row.flags,
        "attempts": row.attempts,
        "detail": row.detail,
        "received_at": _iso(row.received_at),
        "delivered_at": _iso(row.delivered_at),
    }


class ManifestTally:
    """Counts by outcome, per mailbox and in total, kept while the message lines are written."""

    def __init__(self) -> None:
        self._mailboxes: dict[str, Counter[str]] = {}

    def add(self, row: ManifestRow) -> None:
        """Count one item."""
        self._mailboxes.setdefault(row.mailbox, Counter())[row.state.value] += 1

    def summary(self) -> ManifestSummary:
        """The totals over every mailbox (every outcome listed, zero or not)."""
        totals = {state.value: 0 for state in ItemState}
        for counts in self._mailboxes.values():
            for state, count in counts.items():
                totals[state] += count
        return ManifestSummary(totals, len(self._mailboxes))

    def closing_lines(self, verification: Verification, finished_at: float) -> list[dict[str, object]]:
        """The mailbox lines, in mailbox order, then the summary line."""
        lines: list[dict[str, object]] = [
            {"type": "mailbox", "mailbox": mailbox, "counts": {s.value: counts[s.value] for s in ItemState}}
            for mailbox, counts in sorted(self._mailboxes.items())
        ]
        lines.append(
            {
                "type": "summary",
                "finished_at": _iso(finished_at),
                "mailboxes": len(self._mailboxes),
                "totals": self.summary().totals,
                "verification": {
                    "copies_checked": verification.checked,
                    "folders_checked": verification.folders,
                    "duplicates": list(verification.duplicates),
                    "moved_on_primary": list(verification.moved_on_primary),
                    "skipped": verification.skipped or None,
                },
            }
        )
        return lines
