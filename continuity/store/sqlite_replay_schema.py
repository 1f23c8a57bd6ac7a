"""SQL schema of the replay component (runs and the per-recipient journal) and row mapping helpers.

Append a script to change the schema; never edit one that has shipped. The journal
references the core ``messages`` table (an item goes with its message) and reads the
webmail's columns of ``mailbox_messages`` (folder, flags, expunged, changed_at), so
these migrations are registered after the core and webmail ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from continuity.core.replay_journal import OPEN, ItemState
from continuity.core.replay_plan import Channel, ItemKind
from continuity.core.replay_records import JournalItem, ManifestRow, ReplayRun, RunKind, RunStatus

REPLAY_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE replay_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    compromise INTEGER NOT NULL,
    confirmed_by TEXT NOT NULL DEFAULT '',
    confirmed_at REAL NOT NULL DEFAULT 0,
    finished_at REAL NOT NULL DEFAULT 0,
    manifest_path TEXT NOT NULL DEFAULT '',
    manifest_sha256 TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);

-- One item per (message, mailbox): deliver the message into that mailbox on the primary.
CREATE TABLE replay_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES replay_runs (id),
    queue_id TEXT NOT NULL REFERENCES messages (queue_id) ON DELETE CASCADE,
    mailbox TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    folder TEXT NOT NULL,
    flags TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    code INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL NOT NULL DEFAULT 0,
    placed_folder TEXT NOT NULL DEFAULT '',
    placed_flags TEXT NOT NULL DEFAULT '',
    released INTEGER NOT NULL DEFAULT 0,
    warned INTEGER NOT NULL DEFAULT 0,
    planned_at REAL NOT NULL,
    UNIQUE (queue_id, mailbox)
);
CREATE INDEX replay_items_due ON replay_items (channel, state, mailbox, next_attempt_at);
CREATE INDEX replay_items_by_run ON replay_items (run_id, state);
""",
    # Planning walks the standby copies by id from a cursor kept with the run; settling and
    # the reconciliation find a message's copies by queue id; the resync looks only at the
    # copies the webmail changed, not at every delivered item.
    """
ALTER TABLE replay_runs ADD COLUMN planned_through INTEGER NOT NULL DEFAULT 0;
CREATE INDEX mailbox_messages_by_queue_id ON mailbox_messages (queue_id);
CREATE INDEX mailbox_messages_changed ON mailbox_messages (changed_at) WHERE changed_at > 0;
""",
)

OPEN_STATES = tuple(state.value for state in OPEN)
OPEN_MARKS = ",".join("?" * len(OPEN_STATES))
# Every channel: "channel IN (...)" lets a query on states seek the due index (channel, state, ...).
CHANNELS = tuple(channel.value for channel in Channel)
CHANNEL_MARKS = ",".join("?" * len(CHANNELS))

RUN_COLUMNS = (
    "id, kind, status, started_at, compromise, confirmed_by, confirmed_at, finished_at, manifest_path,"
    " manifest_sha256, detail, planned_through"
)

ITEM_COLUMNS = """
ri.id, ri.run_id, ri.queue_id, ri.mailbox, ri.row_id, ri.kind, ri.channel, ri.folder, ri.flags, ri.state,
ri.attempts, ri.first_attempt_at, ri.next_attempt_at, ri.detail, ri.delivered_at, ri.placed_folder,
ri.placed_flags, ri.released, m.message_id, m.sha256, m.size, m.sender, m.subject, m.received_at,
(SELECT GROUP_CONCAT(address, char(10)) FROM
    (SELECT address FROM message_recipients r WHERE r.queue_id = ri.queue_id AND r.mailbox = ri.mailbox
     ORDER BY position)),
COALESCE(mm.folder, 'INBOX'), COALESCE(mm.flags, ''), COALESCE(mm.expunged, 0), m.client_helo, m.client_address,
m.trace_header, COALESCE((SELECT fv.verdict FROM filter_verdicts fv WHERE fv.queue_id = ri.queue_id), '')
"""
ITEM_FROM = """
FROM replay_items ri
JOIN messages m ON m.queue_id = ri.queue_id
LEFT JOIN mailbox_messages mm ON mm.id = ri.row_id
"""


def run_from(row: tuple[object, ...]) -> ReplayRun:
    """A ReplayRun from a row of RUN_COLUMNS."""
    (id_, kind, status, started, compromise, by, confirmed, finished, path, digest, detail, through) = row
    return ReplayRun(
        id=int(id_),  # type: ignore[call-overload]
        kind=RunKind(str(kind)),
        status=RunStatus(str(status)),
        started_at=float(started),  # type: ignore[arg-type]
        compromise=bool(compromise),
        confirmed_by=str(by),
        confirmed_at=float(confirmed),  # type: ignore[arg-type]
        finished_at=float(finished),  # type: ignore[arg-type]
        manifest_path=str(path),
        manifest_sha256=str(digest),
        detail=str(detail),
        planned_through=int(through),  # type: ignore[call-overload]
    )


@functools.lru_cache(maxsize=4096)
def encode_folder(folder: tuple[str, ...]) -> str:
    """The stored form of a folder path."""
    return json.dumps(list(folder), ensure_ascii=False)


def item_from(row: tuple[object, ...]) -> JournalItem:
    """A JournalItem from a row of ITEM_COLUMNS."""
    (
        id_, run_id, queue_id, mailbox, row_id, kind, channel, folder, flags, state, attempts, first, next_at,
        detail, delivered, placed_folder, placed_flags, released, message_id, sha256, size, sender, subject,
        received, rcpts, mm_folder, mm_flags, mm_expunged, helo, client, trace, verdict,
    ) = row  # fmt: skip
    tries = int(attempts)  # type: ignore[call-overload]
    return JournalItem(
        id=int(id_),  # type: ignore[call-overload]
        run_id=int(run_id),  # type: ignore[call-overload]
        queue_id=str(queue_id),
        mailbox=str(mailbox),
        row_id=int(row_id),  # type: ignore[call-overload]
        kind=ItemKind(str(kind)),
        channel=Channel(str(channel)),
        folder=tuple(json.loads(str(folder))),
        flags=tuple(str(flags).split()),
        state=ItemState(str(state)),
        attempts=tries,
        first_attempt_at=float(first),  # type: ignore[arg-type]
        next_attempt_at=float(next_at),  # type: ignore[arg-type]
        detail=str(detail),
        delivered_at=float(delivered),  # type: ignore[arg-type]
        placed_folder=str(placed_folder),
        placed_flags=str(placed_flags),
        released=bool(released),
        message_id=str(message_id),
        sha256=str(sha256),
        size=int(size),  # type: ignore[call-overload]
        sender=str(sender),
        subject=str(subject),
        received_at=float(received),  # type: ignore[arg-type]
        recipients=tuple(str(rcpts).split("\n")) if rcpts else (),
        standby_folder=str(mm_folder),
        standby_flags=str(mm_flags),
        standby_expunged=bool(mm_expunged),
        client_helo=str(helo),
        client_address=str(client),
        trace_header=bytes(trace) if isinstance(trace, bytes | bytearray | memoryview) else b"",
        stored_verdict=str(verdict),
    )


def manifest_row(row: Sequence[object]) -> ManifestRow:
    """A ManifestRow from (mailbox, queue_id, message_id, sha256, state, kind, channel, placed_folder, folder,
    flags, placed_flags, attempts, detail, delivered_at, subject, sender, received_at)."""
    (
        mailbox, queue_id, message_id, sha256, state, kind, channel, placed_folder, folder, flags, placed_flags,
        attempts, detail, delivered, subject, sender, received,
    ) = row  # fmt: skip
    placed = str(placed_folder)
    return ManifestRow(
        str(mailbox),
        str(queue_id),
        str(message_id),
        str(sha256),
        ItemState(str(state)),
        ItemKind(str(kind)),
        Channel(str(channel)),
        placed or "/".join(part for part in json.loads(str(folder)) if part),
        str(placed_flags) if placed else str(flags),
        int(attempts),  # type: ignore[call-overload]
        str(detail),
        float(delivered),  # type: ignore[arg-type]
        str(subject),
        str(sender),
        float(received),  # type: ignore[arg-type]
    )
