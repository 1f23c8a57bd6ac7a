"""The filter pipeline's tables in SQLite: verdicts, thread memory, correspondents' accounts, quarantine.

Inbound verdicts are written in the same transaction as their message's queue row
(continuity.store.sqlite_messages calls :func:`insert_verdict_rows`), so a stored
message always has its verdict. Held (quarantined) messages have a queue row in state
``held`` and no row in any mailbox; a release adds the recipients' Inbox rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from continuity.core.filter_records import (
    AccountObservation,
    DocumentObservation,
    Fingerprint,
    StoredVerdict,
    ThreadHistory,
    ThreadObservation,
)
from continuity.core.models import IncomingMessage, MessageState, QueueEntry
from continuity.errors import NotFoundError, StorageError
from continuity.store.blobs import BlobStore
from continuity.store.sqlite_db import SqliteDatabase
from continuity.store.sqlite_messages import _ENTRY_QUERY, _entry_from

_DOCUMENTS_READ = 200  # the most recent fingerprints compared with one message's documents


def _sketch_text(values: tuple[int, ...]) -> str:
    return ",".join(format(value, "x") for value in values)


def _sketch_values(text: str) -> tuple[int, ...]:
    return tuple(int(value, 16) for value in text.split(",") if value)


FILTER_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE filter_verdicts (
    queue_id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    direction TEXT NOT NULL,
    evaluated_at REAL NOT NULL,
    findings TEXT NOT NULL,
    stages TEXT NOT NULL
);

CREATE TABLE filter_thread_messages (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    sender_domain TEXT NOT NULL,
    participants TEXT NOT NULL,
    link_domains TEXT NOT NULL,
    dkim_domain TEXT NOT NULL,
    network TEXT NOT NULL,
    mailer TEXT NOT NULL,
    direction TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE INDEX filter_thread_messages_by_seen ON filter_thread_messages (seen_at);
CREATE INDEX filter_thread_messages_by_domain ON filter_thread_messages (sender_domain);

CREATE TABLE filter_accounts (
    correspondent TEXT NOT NULL,
    account TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (correspondent, account)
);
""",
    # Fingerprints (MinHash sketches) of recent documents with the payment details found in them.
    """
CREATE TABLE filter_documents (
    correspondent TEXT NOT NULL,
    message_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    sketch TEXT NOT NULL,
    accounts TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (correspondent, message_id, filename)
);
CREATE INDEX filter_documents_by_message ON filter_documents (message_id);
CREATE INDEX filter_documents_by_seen ON filter_documents (seen_at);
""",
)

_VERDICT_INSERT = (
    "INSERT OR REPLACE INTO filter_verdicts (queue_id, verdict, score, direction, evaluated_at, findings, stages)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _verdict_row(queue_id: str, verdict: StoredVerdict) -> tuple[object, ...]:
    return (
        queue_id,
        verdict.verdict.value,
        verdict.score,
        verdict.direction.value,
        verdict.evaluated_at,
        verdict.findings_json(),
        verdict.stages_json(),
    )


def insert_verdict_rows(connection: sqlite3.Connection, batch: Sequence[IncomingMessage]) -> None:
    """Insert the verdicts of a committing batch (inside its transaction)."""
    rows = [_verdict_row(m.queue_id, m.verdict) for m in batch if m.verdict is not None]
    if rows:
        connection.executemany(_VERDICT_INSERT, rows)


class SqliteVerdictRepository:
    """VerdictRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def record(self, queue_id: str, verdict: StoredVerdict) -> None:
        await self._db.write(lambda connection: connection.execute(_VERDICT_INSERT, _verdict_row(queue_id, verdict)))

    async def get(self, queue_id: str) -> StoredVerdict | None:
        def work(connection: sqlite3.Connection) -> StoredVerdict | None:
            row = connection.execute(
                "SELECT verdict, score, direction, evaluated_at, findings, stages FROM filter_verdicts"
                " WHERE queue_id = ?",
                (queue_id,),
            ).fetchone()
            if row is None:
                return None
            verdict, score, direction, at, findings, stages = row
            return StoredVerdict.from_json(str(verdict), float(score), str(direction), float(at), findings, stages)

        return await self._db.read(work)


class SqliteFilterMemoryRepository:
    """FilterMemoryRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def observe_threads(self, batch: Sequence[ThreadObservation]) -> None:
        rows = [
            (
                o.message_id,
                o.sender,
                o.sender.rpartition("@")[2],
                json.dumps(sorted(o.participants)),
                json.dumps(sorted(o.link_domains)),
                o.fingerprint.dkim_domain,
                o.fingerprint.network,
                o.fingerprint.mailer,
                o.direction.value,
                o.seen_at,
            )
            for o in batch
            if o.message_id
        ]
        if rows:
            await self._db.write(
                lambda connection: connection.executemany(
                    "INSERT OR IGNORE INTO filter_thread_messages (message_id, sender, sender_domain, participants,"
                    " link_domains, dkim_domain, network, mailer, direction, seen_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            )

    async def thread(self, message_ids: Sequence[str]) -> ThreadHistory:
        wanted = list(dict.fromkeys(message_ids))[:100]
        if not wanted:
            return ThreadHistory()

        def work(connection: sqlite3.Connection) -> ThreadHistory:
            marks = ",".join("?" * len(wanted))
            rows = connection.execute(
                "SELECT sender, participants, link_domains, dkim_domain, network, mailer"
                f" FROM filter_thread_messages WHERE message_id IN ({marks})",
                wanted,
            ).fetchall()
            participants: set[str] = set()
            links: set[str] = set()
            fingerprints: dict[str, set[Fingerprint]] = {}
            for sender, people, domains, dkim_domain, network, mailer in rows:
                participants.update(json.loads(people))
                links.update(json.loads(domains))
                fingerprints.setdefault(str(sender), set()).add(
                    Fingerprint(str(dkim_domain), str(network), str(mailer))
                )
            return ThreadHistory(
                messages=len(rows),
                participants=frozenset(participants),
                link_domains=frozenset(links),
                senders=frozenset(fingerprints),
                fingerprints={sender: frozenset(found) for sender, found in fingerprints.items()},
            )

        return await self._db.read(work)

    async def add_accounts(self, batch: Sequence[AccountObservation]) -> None:
        rows = [(o.correspondent, account, o.seen_at, o.seen_at) for o in batch for account in o.accounts]
        if rows:
            await self._db.write(
                lambda connection: connection.executemany(
                    "INSERT INTO filter_accounts (correspondent, account, first_seen, last_seen) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (correspondent, account) DO UPDATE SET last_seen = excluded.last_seen",
                    rows,
                )
            )

    async def accounts(self, correspondent: str) -> frozenset[str]:
        def work(connection: sqlite3.Connection) -> frozenset[str]:
            rows = connection.execute("SELECT account FROM filter_accounts WHERE correspondent = ?", (correspondent,))
            return frozenset(str(row[0]) for row in rows)

        return await self._db.read(work)

    async def add_documents(self, batch: Sequence[DocumentObservation]) -> None:
        rows = [
            (
                o.correspondent,
                o.message_id,
                o.filename,
                _sketch_text(o.sketch),
                json.dumps(sorted(o.accounts)),
                o.seen_at,
            )
            for o in batch
        ]
        if rows:
            await self._db.write(
                lambda connection: connection.executemany(
                    "INSERT OR REPLACE INTO filter_documents"
                    " (correspondent, message_id, filename, sketch, accounts, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            )

    async def documents(
        self, correspondent: str, message_ids: Sequence[str], since: float
    ) -> tuple[DocumentObservation, ...]:
        wanted = list(dict.fromkeys(message_ids))[:100]

        def work(connection: sqlite3.Connection) -> tuple[DocumentObservation, ...]:
            marks = ",".join("?" * len(wanted))
            in_thread = f" OR message_id IN ({marks})" if wanted else ""
            rows = connection.execute(
                "SELECT correspondent, message_id, filename, sketch, accounts, seen_at FROM filter_documents"
                f" WHERE seen_at >= ? AND (correspondent = ?{in_thread}) ORDER BY seen_at DESC LIMIT ?",
                (since, correspondent, *wanted, _DOCUMENTS_READ),
            ).fetchall()
            return tuple(
                DocumentObservation(
                    str(who),
                    str(message_id),
                    str(filename),
                    _sketch_values(str(sketch)),
                    frozenset(json.loads(accounts)),
                    at,
                )
                for who, message_id, filename, sketch, accounts, at in rows
            )

        return await self._db.read(work)

    async def known_domains(self, min_messages: int = 2, limit: int = 5000) -> frozenset[str]:
        def work(connection: sqlite3.Connection) -> frozenset[str]:
            rows = connection.execute(
                "SELECT sender_domain FROM filter_thread_messages WHERE sender_domain != ''"
                " GROUP BY sender_domain HAVING COUNT(*) >= ? ORDER BY COUNT(*) DESC LIMIT ?",
                (min_messages, limit),
            )
            return frozenset(str(row[0]) for row in rows)

        return await self._db.read(work)

    async def prune(self, before: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            threads = connection.execute("DELETE FROM filter_thread_messages WHERE seen_at < ?", (before,)).rowcount
            documents = connection.execute("DELETE FROM filter_documents WHERE seen_at < ?", (before,)).rowcount
            return int(threads) + int(documents)

        return await self._db.write(work)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SqliteQuarantineRepository:
    """QuarantineRepository on SQLite and the blob store."""

    def __init__(self, database: SqliteDatabase, blobs: BlobStore) -> None:
        self._db = database
        self._blobs = blobs

    async def list(self, limit: int = 100, offset: int = 0, mailbox: str | None = None) -> list[QueueEntry]:
        def work(connection: sqlite3.Connection) -> list[QueueEntry]:
            where = " WHERE m.state = ?"
            params: list[object] = [MessageState.HELD.value]
            if mailbox is not None:
                where += " AND m.queue_id IN (SELECT queue_id FROM message_recipients WHERE mailbox = ?)"
                params.append(mailbox.lower())
            rows = connection.execute(
                _ENTRY_QUERY + where + " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            return [_entry_from(row) for row in rows]

        return await self._db.read(work)

    @staticmethod
    def _held(connection: sqlite3.Connection, queue_id: str) -> QueueEntry:
        row = connection.execute(_ENTRY_QUERY + " WHERE m.queue_id = ?", (queue_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"there is no message {queue_id}")
        entry = _entry_from(row)
        if entry.state is not MessageState.HELD:
            raise NotFoundError(f"message {queue_id} is not in quarantine (it is {entry.state.value})")
        return entry

    async def release(self, queue_id: str) -> QueueEntry:
        def work(connection: sqlite3.Connection) -> QueueEntry:
            entry = self._held(connection, queue_id)
            now = time.time()
            connection.execute(
                "UPDATE messages SET state = ? WHERE queue_id = ?", (MessageState.QUEUED.value, queue_id)
            )
            connection.execute(
                "INSERT OR IGNORE INTO mailbox_messages (mailbox, queue_id, folder, flags, delivered_at)"
                " SELECT DISTINCT mailbox, queue_id, 'INBOX', '', ? FROM message_recipients WHERE queue_id = ?",
                (now, queue_id),
            )
            return entry

        return await self._db.write(work)

    async def delete(self, queue_id: str) -> QueueEntry:
        def work(connection: sqlite3.Connection) -> tuple[QueueEntry, bool]:
            entry = self._held(connection, queue_id)
            connection.execute("DELETE FROM filter_verdicts WHERE queue_id = ?", (queue_id,))
            connection.execute("DELETE FROM message_recipients WHERE queue_id = ?", (queue_id,))
            connection.execute("DELETE FROM mailbox_messages WHERE queue_id = ?", (queue_id,))
            connection.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))
            shared = connection.execute("SELECT 1 FROM messages WHERE sha256 = ? LIMIT 1", (entry.sha256,)).fetchone()
            return entry, shared is None

        def delete_all() -> QueueEntry:
            entry, orphan = self._db.transact_sync(work)
            if orphan:
                try:
                    self._blobs.path_for(entry.sha256).unlink(missing_ok=True)
                    _fsync_directory(self._blobs.bodies)
                except OSError as exc:
                    raise StorageError(f"message {queue_id} was deleted but its body could not be: {exc}") from exc
            return entry

        return await self._db.run_in_writer(delete_all)
