"""Signals, mailbox states and baseline history in SQLite (component "signals")."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from continuity.core.baseline import ContactKind, ContactObservation, HourTotals, SendEvent
from continuity.core.signals import MailboxState, MailboxStatus, Response, Severity, Signal, SignalKind, StoredSignal
from continuity.store.sqlite_db import SqliteDatabase

SIGNAL_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    mailbox TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    source TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    responses TEXT NOT NULL,
    cleared_at REAL
);
CREATE INDEX signals_by_mailbox ON signals (mailbox, at);
CREATE INDEX signals_by_at ON signals (at);

CREATE TABLE signal_mailboxes (
    mailbox TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    since REAL NOT NULL,
    reason TEXT NOT NULL,
    cleared_at REAL NOT NULL DEFAULT 0,
    cleared_by TEXT NOT NULL DEFAULT ''
);

-- One row per outbound message of a mailbox (the baseline's history).
CREATE TABLE signal_sends (
    mailbox TEXT NOT NULL,
    at REAL NOT NULL,
    recipients INTEGER NOT NULL,
    new_recipients INTEGER NOT NULL
);
CREATE INDEX signal_sends_by_mailbox ON signal_sends (mailbox, at);

CREATE TABLE signal_bounces (
    mailbox TEXT NOT NULL,
    at REAL NOT NULL,
    recipient TEXT NOT NULL
);
CREATE INDEX signal_bounces_by_mailbox ON signal_bounces (mailbox, at);

CREATE TABLE signal_contacts (
    mailbox TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (mailbox, kind, address)
) WITHOUT ROWID;
""",
)

_SIGNAL_COLUMNS = "id, at, mailbox, kind, severity, summary, evidence, source, queue_id, dedupe, responses, cleared_at"


def _stored(row: tuple[object, ...]) -> StoredSignal:
    (id_, at, mailbox, kind, severity, summary, evidence, source, queue_id, dedupe, responses, cleared) = row
    key = str(dedupe).partition(":")[2]
    signal = Signal(
        kind=SignalKind(str(kind)),
        mailbox=str(mailbox),
        severity=Severity(str(severity)),
        summary=str(summary),
        evidence=tuple(str(line) for line in json.loads(str(evidence))),
        at=float(at),  # type: ignore[arg-type]
        source=str(source),
        queue_id=str(queue_id),
        key=key,
    )
    return StoredSignal(
        int(id_),  # type: ignore[call-overload]
        signal,
        tuple(Response(str(item)) for item in json.loads(str(responses))),
        None if cleared is None else float(cleared),  # type: ignore[arg-type]
    )


def _state(mailbox: str, row: tuple[object, ...] | None) -> MailboxState:
    if row is None:
        return MailboxState(mailbox)
    status, since, reason, cleared_at, cleared_by = row
    return MailboxState(
        mailbox,
        MailboxStatus(str(status)),
        float(since),  # type: ignore[arg-type]
        str(reason),
        float(cleared_at),  # type: ignore[arg-type]
        str(cleared_by),
    )


_STATE_QUERY = "SELECT status, since, reason, cleared_at, cleared_by FROM signal_mailboxes WHERE mailbox = ?"


class SqliteSignalRepository:
    """SignalRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def record(self, signal: Signal, responses: Sequence[Response]) -> StoredSignal:
        def work(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO signals (at, mailbox, kind, severity, summary, evidence, source, queue_id, dedupe,"
                " responses) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    signal.at,
                    signal.mailbox,
                    signal.kind.value,
                    signal.severity.value,
                    signal.summary,
                    json.dumps(list(signal.evidence), ensure_ascii=False),
                    signal.source,
                    signal.queue_id,
                    signal.dedupe,
                    json.dumps([response.value for response in responses]),
                ),
            )
            return int(cursor.lastrowid or 0)

        return StoredSignal(await self._db.write(work), signal, tuple(responses))

    async def since(self, at: float) -> list[StoredSignal]:
        def work(connection: sqlite3.Connection) -> list[StoredSignal]:
            rows = connection.execute(f"SELECT {_SIGNAL_COLUMNS} FROM signals WHERE at >= ? ORDER BY at, id", (at,))
            return [_stored(row) for row in rows]

        return await self._db.read(work)

    async def state(self, mailbox: str) -> MailboxState:
        key = mailbox.lower()

        def work(connection: sqlite3.Connection) -> MailboxState:
            return _state(key, connection.execute(_STATE_QUERY, (key,)).fetchone())

        return await self._db.read(work)

    async def states(self) -> list[MailboxState]:
        def work(connection: sqlite3.Connection) -> list[MailboxState]:
            rows = connection.execute(
                "SELECT mailbox, status, since, reason, cleared_at, cleared_by FROM signal_mailboxes ORDER BY mailbox"
            )
            return [_state(str(row[0]), tuple(row[1:])) for row in rows]

        return await self._db.read(work)

    async def set_status(self, mailbox: str, status: MailboxStatus, reason: str, at: float) -> MailboxState:
        key = mailbox.lower()

        def work(connection: sqlite3.Connection) -> MailboxState:
            current = _state(key, connection.execute(_STATE_QUERY, (key,)).fetchone())
            if current.status is status or (
                current.status is MailboxStatus.CONTAINED and status is MailboxStatus.FLAGGED
            ):
                return current
            connection.execute(
                "INSERT INTO signal_mailboxes (mailbox, status, since, reason) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox) DO UPDATE SET status = excluded.status, since = excluded.since,"
                " reason = excluded.reason",
                (key, status.value, at, reason),
            )
            return _state(key, connection.execute(_STATE_QUERY, (key,)).fetchone())

        return await self._db.write(work)

    async def clear(self, mailbox: str, actor: str, at: float) -> tuple[MailboxState, int]:
        key = mailbox.lower()

        def work(connection: sqlite3.Connection) -> tuple[MailboxState, int]:
            before = _state(key, connection.execute(_STATE_QUERY, (key,)).fetchone())
            cleared = connection.execute(
                "UPDATE signals SET cleared_at = ? WHERE mailbox = ? AND cleared_at IS NULL", (at, key)
            ).rowcount
            connection.execute(
                "INSERT INTO signal_mailboxes (mailbox, status, since, reason, cleared_at, cleared_by)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox) DO UPDATE SET status = excluded.status,"
                " since = excluded.since, reason = excluded.reason, cleared_at = excluded.cleared_at,"
                " cleared_by = excluded.cleared_by",
                (key, MailboxStatus.NORMAL.value, at, f"cleared by {actor}", at, actor),
            )
            return before, int(cleared)

        return await self._db.write(work)

    async def add_sends(self, batch: Sequence[tuple[str, SendEvent]]) -> None:
        rows = [(mailbox, event.at, event.recipients, event.new_recipients) for mailbox, event in batch]
        await self._db.write(
            lambda connection: connection.executemany(
                "INSERT INTO signal_sends (mailbox, at, recipients, new_recipients) VALUES (?, ?, ?, ?)", rows
            )
        )

    async def hourly(self, mailbox: str, since: float, until: float) -> list[HourTotals]:
        def work(connection: sqlite3.Connection) -> list[HourTotals]:
            rows = connection.execute(
                "SELECT COUNT(*), SUM(recipients), SUM(new_recipients) FROM signal_sends"
                " WHERE mailbox = ? AND at >= ? AND at < ? GROUP BY CAST(at / 3600 AS INTEGER)",
                (mailbox, since, until),
            )
            return [HourTotals(int(count), int(recipients), int(new)) for count, recipients, new in rows]

        return await self._db.read(work)

    async def recent_sends(self, mailbox: str, since: float) -> list[SendEvent]:
        def work(connection: sqlite3.Connection) -> list[SendEvent]:
            rows = connection.execute(
                "SELECT at, recipients, new_recipients FROM signal_sends WHERE mailbox = ? AND at >= ? ORDER BY at",
                (mailbox, since),
            )
            return [SendEvent(float(at), int(recipients), int(new)) for at, recipients, new in rows]

        return await self._db.read(work)

    async def add_bounces(self, batch: Sequence[tuple[str, float, str]]) -> None:
        rows = list(batch)
        await self._db.write(
            lambda connection: connection.executemany(
                "INSERT INTO signal_bounces (mailbox, at, recipient) VALUES (?, ?, ?)", rows
            )
        )

    async def recent_bounces(self, mailbox: str, since: float) -> list[float]:
        def work(connection: sqlite3.Connection) -> list[float]:
            rows = connection.execute(
                "SELECT at FROM signal_bounces WHERE mailbox = ? AND at >= ? ORDER BY at", (mailbox, since)
            )
            return [float(row[0]) for row in rows]

        return await self._db.read(work)

    async def add_contacts(self, batch: Sequence[ContactObservation]) -> None:
        rows = [(item.mailbox, item.address, item.kind.value, item.at, item.at) for item in batch]
        await self._db.write(
            lambda connection: connection.executemany(
                "INSERT INTO signal_contacts (mailbox, address, kind, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (mailbox, kind, address) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)",
                rows,
            )
        )

    async def contacts(self, mailbox: str, kinds: Sequence[ContactKind]) -> frozenset[str]:
        wanted = [kind.value for kind in kinds]
        marks = ", ".join("?" for _ in wanted)

        def work(connection: sqlite3.Connection) -> frozenset[str]:
            rows = connection.execute(
                f"SELECT address FROM signal_contacts WHERE mailbox = ? AND kind IN ({marks})", (mailbox, *wanted)
            )
            return frozenset(str(row[0]) for row in rows)

        return await self._db.read(work)

    async def prune(self, before: float, contacts_before: float) -> int:
        def work(connection: sqlite3.Connection) -> int:
            sends = connection.execute("DELETE FROM signal_sends WHERE at < ?", (before,)).rowcount
            bounces = connection.execute("DELETE FROM signal_bounces WHERE at < ?", (before,)).rowcount
            contacts = connection.execute(
                "DELETE FROM signal_contacts WHERE last_seen < ?", (contacts_before,)
            ).rowcount
            return int(sends) + int(bounces) + int(contacts)

        return await self._db.write(work)

    async def list(
        self, limit: int = 100, mailbox: str | None = None, *, open_only: bool = False
    ) -> list[StoredSignal]:
        conditions: list[str] = []
        params: list[object] = []
        if mailbox is not None:
            conditions.append("mailbox = ?")
            params.append(mailbox.lower())
        if open_only:
            conditions.append("cleared_at IS NULL")
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""

        def work(connection: sqlite3.Connection) -> list[StoredSignal]:
            rows = connection.execute(
                f"SELECT {_SIGNAL_COLUMNS} FROM signals{where} ORDER BY at DESC, id DESC LIMIT ?", (*params, limit)
            )
            return [_stored(row) for row in rows]

        return await self._db.read(work)
