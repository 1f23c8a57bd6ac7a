"""The webmail's search index in SQLite: which mailbox rows wait for indexing, and storing their index rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from continuity.core.search_query import owner_token
from continuity.core.webmail_models import IndexedSummary, PendingIndex


def pending_rows(connection: sqlite3.Connection, limit: int) -> list[PendingIndex]:
    """Mailbox rows past the progress mark, oldest first."""
    rows = connection.execute(
        "SELECT mm.id, mm.mailbox, mm.queue_id, m.sha256, m.size, m.received_at, wi.queue_id IS NOT NULL"
        " FROM mailbox_messages mm JOIN messages m ON m.queue_id = mm.queue_id"
        " LEFT JOIN webmail_index wi ON wi.queue_id = mm.queue_id"
        " WHERE mm.id > (SELECT last_id FROM webmail_index_progress) ORDER BY mm.id LIMIT ?",
        (limit,),
    )
    return [PendingIndex(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), float(r[5]), bool(r[6])) for r in rows]


def has_backlog(connection: sqlite3.Connection) -> bool:
    """True when a mailbox row is past the progress mark."""
    row = connection.execute(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM mailbox_messages) > last_id FROM webmail_index_progress"
    ).fetchone()
    return bool(row[0])


def store_index(connection: sqlite3.Connection, entries: Sequence[tuple[PendingIndex, IndexedSummary]]) -> None:
    """Header summaries (once per message), full-text rows (per mailbox row), then the progress mark."""
    connection.executemany(
        "INSERT OR IGNORE INTO webmail_index (queue_id, from_name, from_address, to_addresses, cc_addresses,"
        " subject, sent_at, size, has_attachments, preview) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                s.queue_id,
                s.from_name,
                s.from_address,
                s.to_addresses,
                s.cc_addresses,
                s.subject,
                s.sent_at,
                s.size,
                int(s.has_attachments),
                s.preview,
            )
            for _, s in entries
        ],
    )
    connection.executemany(
        "INSERT INTO webmail_fts (rowid, owner, subject, addresses, body) VALUES (?, ?, ?, ?, ?)",
        [
            (
                p.id,
                owner_token(p.mailbox),
                s.subject,
                f"{s.from_name} {s.from_address} {s.to_addresses} {s.cc_addresses}",
                s.body_text,
            )
            for p, s in entries
        ],
    )
    connection.execute("UPDATE webmail_index_progress SET last_id = MAX(last_id, ?)", (max(p.id for p, _ in entries),))
