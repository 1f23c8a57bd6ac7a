"""The feeds' tables in SQLite (component "feeds"): the relay queue, held outbound mail, the mailbox window.

Mail from the primary's relay is committed by the ingest group commit in state
``outgoing`` (or ``contained`` when held); :func:`insert_feed_rows` runs in that same
transaction and adds its relay-queue row and, for mail on its way out and for journaled
copies, the copy in the sender's Sent folder. Mirrored and gateway-relayed copies are mail
the primary already has: they are pruned after the window and never replayed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence

from continuity.core.mail_folders import Flag, StandardFolder
from continuity.core.models import IncomingMessage, MessageState, QueueEntry, RecipientState
from continuity.errors import NotFoundError, StorageError
from continuity.store.blobs import BlobStore
from continuity.store.signals_protocol import HeldOutbound, OutgoingItem, PruneReport
from continuity.store.sqlite_db import SqliteDatabase
from continuity.store.sqlite_messages import _ENTRY_QUERY, _entry_from

FEED_MIGRATIONS: tuple[str, ...] = (
    """
-- Relay feed: one row per message from the primary (outgoing, contained, then mirrored).
CREATE TABLE feed_outgoing (
    queue_id TEXT PRIMARY KEY REFERENCES messages (queue_id) ON DELETE CASCADE,
    mailbox TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feed_outgoing_due ON feed_outgoing (next_attempt_at);
CREATE INDEX feed_outgoing_by_mailbox ON feed_outgoing (mailbox);
""",
)

# The mailbox a sender address belongs to (its own address, or the mailbox of its alias).
_MAILBOX_OF = (
    "SELECT address FROM mailboxes WHERE address = ?1 UNION ALL SELECT mailbox FROM aliases WHERE alias = ?1 LIMIT 1"
)
_SENT_COPY = (
    "INSERT OR IGNORE INTO mailbox_messages (mailbox, queue_id, folder, flags, delivered_at) VALUES (?, ?, ?, ?, ?)"
)
_WINDOW_STATES = (MessageState.MIRRORED.value, MessageState.RELAYED.value)


def _mailbox_of(connection: sqlite3.Connection, sender: str) -> str | None:
    row = connection.execute(_MAILBOX_OF, (sender.lower(),)).fetchone()
    return None if row is None else str(row[0])


def insert_feed_rows(connection: sqlite3.Connection, batch: Sequence[IncomingMessage]) -> None:
    """Relay-queue rows and Sent copies of a committed batch (a row hook of the message repository)."""
    for message in batch:
        if message.state not in (MessageState.OUTGOING, MessageState.CONTAINED, MessageState.MIRRORED):
            continue
        mailbox = _mailbox_of(connection, message.sender) if message.sender else None
        if message.state is not MessageState.MIRRORED:
            connection.execute(
                "INSERT INTO feed_outgoing (queue_id, mailbox, next_attempt_at) VALUES (?, ?, ?)",
                (message.queue_id, mailbox or message.sender.lower(), message.received_at),
            )
        if mailbox is not None and message.state is not MessageState.CONTAINED:
            connection.execute(
                _SENT_COPY,
                (mailbox, message.queue_id, StandardFolder.SENT.value, Flag.SEEN.value, message.received_at),
            )


def _fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _hold_reason(connection: sqlite3.Connection, queue_id: str, mailbox: str) -> str:
    verdict = connection.execute(
        "SELECT verdict, findings FROM filter_verdicts WHERE queue_id = ?", (queue_id,)
    ).fetchone()
    if verdict is not None and str(verdict[0]) in ("quarantine", "reject"):
        return f"judged {verdict[0]} by the filters"
    status = connection.execute("SELECT status, reason FROM signal_mailboxes WHERE mailbox = ?", (mailbox,)).fetchone()
    if status is not None and str(status[0]) == "contained":
        return f"mailbox contained: {status[1]}"
    signal = connection.execute(
        "SELECT summary FROM signals WHERE queue_id = ? ORDER BY id LIMIT 1", (queue_id,)
    ).fetchone()
    if signal is not None:
        return str(signal[0])
    return "held for review (the mailbox was contained or the primary declared compromised when it arrived)"


class SqliteFeedRepository:
    """FeedRepository on SQLite plus the blob store."""

    def __init__(self, database: SqliteDatabase, blobs: BlobStore) -> None:
        self._db = database
        self._blobs = blobs

    async def outgoing_due(self, now: float, limit: int) -> list[OutgoingItem]:
        def work(connection: sqlite3.Connection) -> list[OutgoingItem]:
            rows = connection.execute(
                "SELECT m.queue_id, m.sender, f.mailbox, m.sha256, m.trace_header, m.received_at, f.attempts"
                " FROM feed_outgoing f JOIN messages m ON m.queue_id = f.queue_id"
                " WHERE m.state = ? AND f.next_attempt_at <= ? ORDER BY f.next_attempt_at, m.queue_id LIMIT ?",
                (MessageState.OUTGOING.value, now, limit),
            ).fetchall()
            items = []
            for queue_id, sender, mailbox, sha256, trace, received_at, attempts in rows:
                pending = connection.execute(
                    "SELECT address FROM message_recipients WHERE queue_id = ? AND state = ? ORDER BY position",
                    (queue_id, RecipientState.PENDING.value),
                )
                items.append(
                    OutgoingItem(
                        str(queue_id),
                        str(sender),
                        str(mailbox),
                        tuple(str(row[0]) for row in pending),
                        str(sha256),
                        bytes(trace),
                        float(received_at),
                        int(attempts),
                    )
                )
            return items

        return await self._db.read(work)

    async def finish_attempt(
        self,
        queue_id: str,
        outcomes: Sequence[tuple[str, RecipientState]],
        next_attempt_at: float,
        error: str,
    ) -> bool:
        def work(connection: sqlite3.Connection) -> bool:
            row = connection.execute("SELECT state FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
            if row is None or row[0] != MessageState.OUTGOING.value:
                return True
            connection.executemany(
                "UPDATE message_recipients SET state = ? WHERE queue_id = ? AND address = ? AND state = ?",
                [(state.value, queue_id, address, RecipientState.PENDING.value) for address, state in outcomes],
            )
            connection.execute(
                "UPDATE feed_outgoing SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE queue_id = ?",
                (next_attempt_at, error[:500], queue_id),
            )
            pending = connection.execute(
                "SELECT 1 FROM message_recipients WHERE queue_id = ? AND state = ? LIMIT 1",
                (queue_id, RecipientState.PENDING.value),
            ).fetchone()
            if pending is not None:
                return False
            connection.execute(
                "UPDATE messages SET state = ? WHERE queue_id = ?", (MessageState.MIRRORED.value, queue_id)
            )
            return True

        return await self._db.write(work)

    async def held(self, limit: int = 100, offset: int = 0, mailbox: str | None = None) -> list[HeldOutbound]:
        def work(connection: sqlite3.Connection) -> list[HeldOutbound]:
            where = " WHERE m.state = ?"
            params: list[object] = [MessageState.CONTAINED.value]
            if mailbox is not None:
                where += " AND m.queue_id IN (SELECT queue_id FROM feed_outgoing WHERE mailbox = ?)"
                params.append(mailbox.lower())
            rows = connection.execute(
                _ENTRY_QUERY + where + " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            held = []
            for row in rows:
                entry = _entry_from(row)
                owner = connection.execute(
                    "SELECT mailbox FROM feed_outgoing WHERE queue_id = ?", (entry.queue_id,)
                ).fetchone()
                owner_mailbox = str(owner[0]) if owner else entry.sender.lower()
                held.append(HeldOutbound(entry, owner_mailbox, _hold_reason(connection, entry.queue_id, owner_mailbox)))
            return held

        return await self._db.read(work)

    @staticmethod
    def _held(connection: sqlite3.Connection, queue_id: str) -> QueueEntry:
        row = connection.execute(_ENTRY_QUERY + " WHERE m.queue_id = ?", (queue_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"there is no message {queue_id}")
        entry = _entry_from(row)
        if entry.state is not MessageState.CONTAINED:
            raise NotFoundError(f"message {queue_id} is not held outbound mail (it is {entry.state.value})")
        return entry

    async def release(self, queue_id: str) -> QueueEntry:
        def work(connection: sqlite3.Connection) -> QueueEntry:
            entry = self._held(connection, queue_id)
            now = time.time()
            connection.execute(
                "UPDATE messages SET state = ? WHERE queue_id = ?", (MessageState.OUTGOING.value, queue_id)
            )
            connection.execute("UPDATE feed_outgoing SET next_attempt_at = ? WHERE queue_id = ?", (now, queue_id))
            mailbox = _mailbox_of(connection, entry.sender) if entry.sender else None
            if mailbox is not None:
                connection.execute(
                    _SENT_COPY, (mailbox, queue_id, StandardFolder.SENT.value, Flag.SEEN.value, entry.received_at)
                )
            return entry

        return await self._db.write(work)

    def _delete_sync(self, queue_ids: Sequence[str], *, held_only: bool) -> tuple[list[QueueEntry], int]:
        def work(connection: sqlite3.Connection) -> tuple[list[QueueEntry], list[str]]:
            entries: list[QueueEntry] = []
            digests: set[str] = set()
            for queue_id in queue_ids:
                if held_only:
                    entry = self._held(connection, queue_id)
                else:
                    row = connection.execute(_ENTRY_QUERY + " WHERE m.queue_id = ?", (queue_id,)).fetchone()
                    if row is None:
                        continue
                    entry = _entry_from(row)
                    if entry.state.value not in _WINDOW_STATES:
                        continue
                connection.execute("DELETE FROM filter_verdicts WHERE queue_id = ?", (queue_id,))
                connection.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))
                entries.append(entry)
                digests.add(entry.sha256)
            orphans = [
                digest
                for digest in sorted(digests)
                if connection.execute("SELECT 1 FROM messages WHERE sha256 = ? LIMIT 1", (digest,)).fetchone() is None
                and connection.execute("SELECT 1 FROM outbound_messages WHERE sha256 = ? LIMIT 1", (digest,)).fetchone()
                is None
            ]
            return entries, orphans

        entries, orphans = self._db.transact_sync(work)
        # Bodies go after the rows: a crash in between leaves an unreferenced file, never a row
        # without its body. This runs on the writer thread, after any commit queued before it.
        try:
            for digest in orphans:
                self._blobs.path_for(digest).unlink(missing_ok=True)
            if orphans:
                _fsync_directory(str(self._blobs.bodies))
        except OSError as exc:
            raise StorageError(f"messages were deleted but not all of their bodies: {exc}") from exc
        return entries, len(orphans)

    async def delete(self, queue_id: str) -> QueueEntry:
        entries, _bodies = await self._db.run_in_writer(lambda: self._delete_sync([queue_id], held_only=True))
        return entries[0]

    async def prune_window(self, before: float, limit: int = 500) -> PruneReport:
        def candidates(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT queue_id FROM messages WHERE state IN (?, ?) AND received_at < ? ORDER BY received_at LIMIT ?",
                (*_WINDOW_STATES, before, limit),
            )
            return [str(row[0]) for row in rows]

        queue_ids = await self._db.read(candidates)
        if not queue_ids:
            return PruneReport(0, 0)
        entries, bodies = await self._db.run_in_writer(lambda: self._delete_sync(queue_ids, held_only=False))
        return PruneReport(len(entries), bodies)
