"""The outbound queue in SQLite: messages users send, with per-recipient delivery state.

A message is durable before the user is told it was sent: its body is in the blob store
and its rows are committed. The delivery worker picks due messages, records each
recipient's outcome and the next attempt time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from continuity.core.delivery import DeliveryStatus, RecipientResult
from continuity.store.sqlite_db import SqliteDatabase

OUTBOUND_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE outbound_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    sender TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    subject TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbound_messages_due ON outbound_messages (done, next_attempt_at);

CREATE TABLE outbound_recipients (
    outbound_id INTEGER NOT NULL REFERENCES outbound_messages (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    code INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (outbound_id, address)
);
""",
)

PENDING = "pending"


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    """One recipient's delivery state."""

    address: str
    state: str
    code: int
    detail: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A queued outbound message."""

    id: int
    mailbox: str
    sender: str
    sha256: str
    subject: str
    created_at: float
    attempts: int
    done: bool
    recipients: tuple[OutboundRecipient, ...]

    @property
    def waiting(self) -> list[str]:
        """Recipients still to be delivered (pending or deferred)."""
        return [r.address for r in self.recipients if r.state in (PENDING, DeliveryStatus.DEFERRED.value)]


def _load(connection: sqlite3.Connection, row: tuple[object, ...]) -> OutboundMessage:
    id_ = int(row[0])  # type: ignore[call-overload]
    recipients = tuple(
        OutboundRecipient(str(r[0]), str(r[1]), int(r[2]), str(r[3]))
        for r in connection.execute(
            "SELECT address, state, code, detail FROM outbound_recipients WHERE outbound_id = ? ORDER BY rowid", (id_,)
        )
    )
    return OutboundMessage(
        id=id_,
        mailbox=str(row[1]),
        sender=str(row[2]),
        sha256=str(row[3]),
        subject=str(row[4]),
        created_at=float(row[5]),  # type: ignore[arg-type]
        attempts=int(row[6]),  # type: ignore[call-overload]
        done=bool(row[7]),
        recipients=recipients,
    )


_COLUMNS = "id, mailbox, sender, sha256, subject, created_at, attempts, done"


class SqliteOutboundRepository:
    """The outbound queue's rows."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def enqueue(
        self, mailbox: str, sender: str, recipients: Sequence[str], sha256: str, size: int, subject: str
    ) -> int:
        """Queue a message whose body is already durable; returns its id."""
        now = time.time()

        def work(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO outbound_messages (mailbox, sender, sha256, size, subject, created_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mailbox, sender, sha256, size, subject, now, now),
            )
            outbound_id = int(cursor.lastrowid or 0)
            connection.executemany(
                "INSERT OR IGNORE INTO outbound_recipients (outbound_id, address, state, updated_at)"
                " VALUES (?, ?, ?, ?)",
                [(outbound_id, address, PENDING, now) for address in recipients],
            )
            return outbound_id

        return await self._db.write(work)

    async def due(self, now: float, limit: int = 20) -> list[OutboundMessage]:
        """Messages whose next attempt is due, oldest first."""

        def work(connection: sqlite3.Connection) -> list[OutboundMessage]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM outbound_messages WHERE done = 0 AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            return [_load(connection, row) for row in rows]

        return await self._db.read(work)

    async def get(self, outbound_id: int) -> OutboundMessage | None:
        """One queued message, or None."""

        def work(connection: sqlite3.Connection) -> OutboundMessage | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM outbound_messages WHERE id = ?", (outbound_id,)
            ).fetchone()
            return None if row is None else _load(connection, row)

        return await self._db.read(work)

    async def next_due(self) -> float | None:
        """When the earliest waiting message is due, or None when nothing waits."""

        def work(connection: sqlite3.Connection) -> float | None:
            row = connection.execute("SELECT MIN(next_attempt_at) FROM outbound_messages WHERE done = 0").fetchone()
            return None if row[0] is None else float(row[0])

        return await self._db.read(work)

    async def record_attempt(
        self, outbound_id: int, results: Sequence[RecipientResult], next_attempt_at: float, give_up: bool
    ) -> None:
        """Store one attempt's outcomes; deferred recipients become failed when give_up."""

        def work(connection: sqlite3.Connection) -> None:
            now = time.time()
            for result in results:
                state = result.status.value
                if give_up and result.status is DeliveryStatus.DEFERRED:
                    state = DeliveryStatus.FAILED.value
                connection.execute(
                    "UPDATE outbound_recipients SET state = ?, code = ?, detail = ?, updated_at = ?"
                    " WHERE outbound_id = ? AND address = ?",
                    (state, result.code, result.text[:500], now, outbound_id, result.recipient),
                )
            waiting = connection.execute(
                "SELECT COUNT(*) FROM outbound_recipients WHERE outbound_id = ? AND state IN (?, ?)",
                (outbound_id, PENDING, DeliveryStatus.DEFERRED.value),
            ).fetchone()[0]
            connection.execute(
                "UPDATE outbound_messages SET attempts = attempts + 1, next_attempt_at = ?, done = ? WHERE id = ?",
                (next_attempt_at, int(waiting == 0), outbound_id),
            )

        await self._db.write(work)
