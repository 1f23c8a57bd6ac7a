"""The replay manifest as JSON Lines: the run, every message, counts per mailbox, the totals last."""

from __future__ import annotations

import json

from continuity.core.replay_journal import ItemState
from continuity.core.replay_manifest import ManifestTally, Verification, encode_line, message_line, run_line
from continuity.core.replay_plan import Channel, ItemKind
from continuity.core.replay_records import ManifestRow, ReplayRun, RunKind, RunStatus


def _row(mailbox: str, queue_id: str, state: ItemState) -> ManifestRow:
    return ManifestRow(
        mailbox, queue_id, f"<{queue_id}@x>", "ab" * 32, state, ItemKind.RECEIVED, Channel.IMAP, "INBOX", "\\Seen",
        1, "", 100.0 if state is ItemState.DELIVERED else 0.0, "subject", "sender@x", 50.0,
    )  # fmt: skip


def test_counts_by_outcome_per_mailbox_and_ids_and_hashes() -> None:
    run = ReplayRun(3, RunKind.RESTORATION, RunStatus.ACTIVE, 10.0, compromise=True, confirmed_by="cli:root")
    rows = [
        _row("bob@example.com", "Q1", ItemState.DELIVERED),
        _row("alice@example.com", "Q1", ItemState.DELIVERED),
        _row("alice@example.com", "Q2", ItemState.HELD),
        _row("bob@example.com", "Q3", ItemState.FAILED),
    ]
    tally = ManifestTally()
    for row in rows:
        tally.add(row)
    summary = tally.summary()
    assert summary.totals["delivered"] == 2 and summary.totals["held"] == 1 and summary.mailboxes == 2
    lines = [run_line(run, method="imap"), *(message_line(row) for row in rows)]
    lines += tally.closing_lines(Verification(2, 1), finished_at=200.0)
    data = b"".join(encode_line(line) for line in lines)
    parsed = [json.loads(line) for line in data.decode().splitlines()]
    assert [line["type"] for line in parsed] == ["run"] + ["message"] * 4 + ["mailbox"] * 2 + ["summary"]
    assert parsed[0]["confirmed_by"] == "cli:root" and parsed[0]["run"] == 3
    first = parsed[1]
    assert first["message_id"] == "<Q1@x>" and first["sha256"] == "ab" * 32 and first["outcome"] == "delivered"
    assert [line["mailbox"] for line in parsed[5:7]] == ["alice@example.com", "bob@example.com"]
    assert parsed[6]["counts"]["failed"] == 1
    assert parsed[-1]["verification"]["copies_checked"] == 2 and parsed[-1]["totals"]["failed"] == 1
    assert all(encode_line(line) == encode_line(json.loads(encode_line(line))) for line in lines)
