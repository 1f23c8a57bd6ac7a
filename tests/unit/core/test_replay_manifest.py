"""The replay manifest: per mailbox counts and messages, the verification, stable bytes."""

from __future__ import annotations

import json

from continuity.core.replay_journal import ItemState
from continuity.core.replay_manifest import Verification, build_manifest, manifest_bytes
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
        _row("alice@example.com", "Q1", ItemState.DELIVERED),
        _row("alice@example.com", "Q2", ItemState.HELD),
        _row("bob@example.com", "Q1", ItemState.DELIVERED),
        _row("bob@example.com", "Q3", ItemState.FAILED),
    ]
    document, summary = build_manifest(run, rows, Verification(2, 1), method="imap", finished_at=200.0)
    assert summary.totals["delivered"] == 2 and summary.totals["held"] == 1 and summary.mailboxes == 2
    mailboxes = document["mailboxes"]
    assert isinstance(mailboxes, dict)
    assert mailboxes["bob@example.com"]["counts"]["failed"] == 1
    first = mailboxes["alice@example.com"]["messages"][0]
    assert first["message_id"] == "<Q1@x>" and first["sha256"] == "ab" * 32 and first["outcome"] == "delivered"
    assert document["confirmed_by"] == "cli:root" and document["verification"]["copies_checked"] == 2  # type: ignore[index]
    data = manifest_bytes(document)
    assert data == manifest_bytes(json.loads(data)) and data.endswith(b"\n")
