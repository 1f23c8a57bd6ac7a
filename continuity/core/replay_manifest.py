"""The manifest of a replay run: per mailbox, counts by outcome and every message (ids, sha256, where).

Pure: built from the journal's rows and the verification's findings; the service writes
it to the data directory and links it (path and sha256) from an audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def build_manifest(
    run: ReplayRun, rows: Sequence[ManifestRow], verification: Verification, *, method: str, finished_at: float
) -> tuple[dict[str, object], ManifestSummary]:
    """The manifest document and its summary."""
    mailboxes: dict[str, dict[str, object]] = {}
    totals = {state.value: 0 for state in ItemState}
    for row in rows:
        entry = mailboxes.setdefault(row.mailbox, {"counts": {state.value: 0 for state in ItemState}, "messages": []})
        counts = entry["counts"]
        messages = entry["messages"]
        assert isinstance(counts, dict) and isinstance(messages, list)
        counts[row.state.value] += 1
        totals[row.state.value] += 1
        messages.append(
            {
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
        )
    document: dict[str, object] = {
        "run": run.id,
        "kind": run.kind.value,
        "method": method,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(finished_at),
        "compromise": run.compromise,
        "confirmed_by": run.confirmed_by or None,
        "confirmed_at": _iso(run.confirmed_at),
        "totals": totals,
        "verification": {
            "copies_checked": verification.checked,
            "folders_checked": verification.folders,
            "duplicates": list(verification.duplicates),
            "moved_on_primary": list(verification.moved_on_primary),
            "skipped": verification.skipped or None,
        },
        "mailboxes": mailboxes,
    }
    return document, ManifestSummary(totals, len(mailboxes))


def manifest_bytes(document: dict[str, object]) -> bytes:
    """The file's bytes: indented JSON with sorted keys, one trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
