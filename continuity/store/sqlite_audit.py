"""The append-only, hash-chained audit log in SQLite, with its head anchored in a file.

Triggers refuse UPDATE and DELETE; the chain (continuity.core.audit) detects changes
made around them, and the head file (the newest entry's seq and hash, rewritten
atomically after every append) detects entries removed from the end.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from continuity.core.audit import GENESIS, AuditEntry, AuditRecord, ChainVerdict, entry_hash, verify_chain
from continuity.errors import StorageError
from continuity.store.sqlite_db import SqliteDatabase

AUDIT_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
""",
)

_COLUMNS = "seq, at, actor, action, reason, details, prev_hash, hash"


def _entry(row: tuple[object, ...]) -> AuditEntry:
    seq, at, actor, action, reason, details, prev_hash, digest = row
    return AuditEntry(
        seq=int(seq),  # type: ignore[call-overload]
        at=float(at),  # type: ignore[arg-type]
        record=AuditRecord(str(actor), str(action), str(reason), str(details)),
        prev_hash=str(prev_hash),
        hash=str(digest),
    )


class SqliteAuditRepository:
    """AuditRepository on SQLite."""

    def __init__(self, database: SqliteDatabase, head_file: Path) -> None:
        self._db = database
        self._head_file = head_file

    def _write_head(self, entry: AuditEntry) -> None:
        temporary = self._head_file.with_name(self._head_file.name + ".tmp")
        try:
            temporary.write_text(f"{entry.seq} {entry.hash}\n")
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            temporary.replace(self._head_file)
        except OSError as exc:
            raise StorageError(
                f"audit entry {entry.seq} is stored but its head file could not be written: {exc}"
            ) from exc

    def _read_head(self) -> tuple[int, str] | None:
        try:
            text = self._head_file.read_text().split()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the audit head file {self._head_file}: {exc}") from exc
        if len(text) != 2 or not text[0].isdigit():
            return (1 << 62, "unreadable head file")
        return int(text[0]), text[1]

    async def append(self, record: AuditRecord) -> AuditEntry:
        def work(connection: sqlite3.Connection) -> AuditEntry:
            last = connection.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
            at = time.time()
            entry = AuditEntry(seq, at, record, prev_hash, entry_hash(seq, at, record, prev_hash))
            connection.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at, record.actor, record.action, record.reason, record.details_json, prev_hash, entry.hash),
            )
            return entry

        def append_and_anchor() -> AuditEntry:
            entry = self._db.transact_sync(work)
            self._write_head(entry)
            return entry

        return await self._db.run_in_writer(append_and_anchor)

    async def list(self, limit: int = 100) -> list[AuditEntry]:
        def work(connection: sqlite3.Connection) -> list[AuditEntry]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM (SELECT * FROM audit_log ORDER BY seq DESC LIMIT ?) ORDER BY seq", (limit,)
            )
            return [_entry(row) for row in rows]

        return await self._db.read(work)

    async def verify(self) -> ChainVerdict:
        def work(connection: sqlite3.Connection) -> ChainVerdict:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
            return verify_chain((_entry(row) for row in rows), self._read_head())

        return await self._db.read(work)
