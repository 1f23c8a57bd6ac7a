"""The failover repository in SQLite: one state row, the transition history, operator commands, probes.

The state row carries a version; a save that does not find the version it expects
changes nothing, so a CLI process and a running server can never both apply a
transition on top of the same state.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from continuity.core.failover import FailoverEvent, FailoverRecord, FailoverState, Routing
from continuity.core.failover_records import CommandStatus, OperatorCommand, RelayItem, TransitionEntry
from continuity.core.health import HealthMemory
from continuity.core.models import MessageState, RecipientState
from continuity.core.probes import ProbeResult
from continuity.errors import StorageError
from continuity.store.sqlite_db import SqliteDatabase

FAILOVER_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE failover_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    since REAL NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    routing TEXT NOT NULL,
    automatic INTEGER NOT NULL,
    paused_from TEXT,
    last_error TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE failover_transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    previous TEXT NOT NULL,
    state TEXT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL
);

CREATE TABLE failover_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    note TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '',
    finished_at REAL
);
CREATE INDEX failover_commands_by_status ON failover_commands (status, id);

CREATE TABLE probe_latest (
    name TEXT PRIMARY KEY,
    result TEXT NOT NULL
);
""",
    # 2: the health policy's memory (streaks, maintenance), so a restart resumes the hold-down.
    """
CREATE TABLE health_memory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    failed_streak INTEGER NOT NULL,
    failed_since REAL NOT NULL,
    healthy_streak INTEGER NOT NULL,
    healthy_since REAL NOT NULL,
    maintenance_since REAL,
    last_cycle_at REAL
);
""",
)

_STATE_COLUMNS = "state, since, reason, actor, routing, automatic, paused_from, last_error, version"
_TRANSITION_COLUMNS = "seq, at, previous, state, event, actor, reason, evidence"
_COMMAND_COLUMNS = "id, at, actor, event, note, status, result"
_HEALTH_COLUMNS = "failed_streak, failed_since, healthy_streak, healthy_since, maintenance_since, last_cycle_at"


def _record(row: tuple[object, ...]) -> FailoverRecord:
    state, since, reason, actor, routing, automatic, paused_from, last_error, version = row
    return FailoverRecord(
        state=FailoverState(str(state)),
        since=float(since),  # type: ignore[arg-type]
        reason=str(reason),
        actor=str(actor),
        routing=Routing(str(routing)),
        automatic=bool(automatic),
        paused_from=FailoverState(str(paused_from)) if paused_from else None,
        last_error=str(last_error),
        version=int(version),  # type: ignore[call-overload]
    )


def _transition(row: tuple[object, ...]) -> TransitionEntry:
    seq, at, previous, state, event, actor, reason, evidence = row
    return TransitionEntry(
        seq=int(seq),  # type: ignore[call-overload]
        at=float(at),  # type: ignore[arg-type]
        previous=FailoverState(str(previous)),
        state=FailoverState(str(state)),
        event=FailoverEvent(str(event)),
        actor=str(actor),
        reason=str(reason),
        evidence_json=str(evidence),
    )


def _command(row: tuple[object, ...]) -> OperatorCommand:
    command_id, at, actor, event, note, status, result = row
    return OperatorCommand(
        id=int(command_id),  # type: ignore[call-overload]
        at=float(at),  # type: ignore[arg-type]
        actor=str(actor),
        event=FailoverEvent(str(event)),
        note=str(note),
        status=CommandStatus(str(status)),
        result=str(result),
    )


class SqliteFailoverRepository:
    """FailoverRepository on SQLite."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def load(self) -> FailoverRecord:
        def work(connection: sqlite3.Connection) -> FailoverRecord:
            row = connection.execute(f"SELECT {_STATE_COLUMNS} FROM failover_state WHERE id = 1").fetchone()
            return FailoverRecord() if row is None else _record(row)

        return await self._db.read(work)

    async def save(
        self, record: FailoverRecord, previous: FailoverState, event: FailoverEvent, evidence_json: str
    ) -> TransitionEntry:
        values = (
            record.state.value,
            record.since,
            record.reason,
            record.actor,
            record.routing.value,
            int(record.automatic),
            record.paused_from.value if record.paused_from else None,
            record.last_error,
            record.version,
        )

        def work(connection: sqlite3.Connection) -> TransitionEntry:
            row = connection.execute("SELECT version FROM failover_state WHERE id = 1").fetchone()
            stored = 0 if row is None else int(row[0])
            if stored != record.version - 1:
                raise StorageError(
                    f"the failover state changed meanwhile (version {stored}, expected {record.version - 1}); "
                    "nothing was changed"
                )
            connection.execute(
                f"INSERT OR REPLACE INTO failover_state (id, {_STATE_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            at = time.time()
            cursor = connection.execute(
                "INSERT INTO failover_transitions (at, previous, state, event, actor, reason, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, previous.value, record.state.value, event.value, record.actor, record.reason, evidence_json),
            )
            seq = int(cursor.lastrowid or 0)
            return TransitionEntry(seq, at, previous, record.state, event, record.actor, record.reason, evidence_json)

        return await self._db.write(work)

    async def history(self, limit: int = 50) -> list[TransitionEntry]:
        def work(connection: sqlite3.Connection) -> list[TransitionEntry]:
            rows = connection.execute(
                f"SELECT {_TRANSITION_COLUMNS} FROM"
                " (SELECT * FROM failover_transitions ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (limit,),
            )
            return [_transition(row) for row in rows]

        return await self._db.read(work)

    async def submit(self, actor: str, event: FailoverEvent, note: str) -> OperatorCommand:
        at = time.time()

        def work(connection: sqlite3.Connection) -> OperatorCommand:
            cursor = connection.execute(
                "INSERT INTO failover_commands (at, actor, event, note, status) VALUES (?, ?, ?, ?, ?)",
                (at, actor, event.value, note, CommandStatus.PENDING.value),
            )
            return OperatorCommand(int(cursor.lastrowid or 0), at, actor, event, note)

        return await self._db.write(work)

    async def pending(self) -> list[OperatorCommand]:
        def work(connection: sqlite3.Connection) -> list[OperatorCommand]:
            rows = connection.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM failover_commands WHERE status = ? ORDER BY id",
                (CommandStatus.PENDING.value,),
            )
            return [_command(row) for row in rows]

        return await self._db.read(work)

    async def finish(self, command_id: int, status: CommandStatus, result: str) -> None:
        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE failover_commands SET status = ?, result = ?, finished_at = ? WHERE id = ?",
                (status.value, result, time.time(), command_id),
            )

        await self._db.write(work)

    async def command(self, command_id: int) -> OperatorCommand | None:
        def work(connection: sqlite3.Connection) -> OperatorCommand | None:
            row = connection.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM failover_commands WHERE id = ?", (command_id,)
            ).fetchone()
            return None if row is None else _command(row)

        return await self._db.read(work)

    async def record_probes(self, results: Sequence[ProbeResult]) -> None:
        rows = [(result.name, json.dumps(result.evidence())) for result in results]

        def work(connection: sqlite3.Connection) -> None:
            connection.executemany("INSERT OR REPLACE INTO probe_latest (name, result) VALUES (?, ?)", rows)

        await self._db.write(work)

    async def latest_probes(self) -> list[ProbeResult]:
        def work(connection: sqlite3.Connection) -> list[ProbeResult]:
            rows = connection.execute("SELECT result FROM probe_latest ORDER BY name")
            return [ProbeResult.from_evidence(json.loads(str(row[0]))) for row in rows]

        return await self._db.read(work)

    async def save_health(self, memory: HealthMemory) -> None:
        values = (
            memory.failed_streak,
            memory.failed_since,
            memory.healthy_streak,
            memory.healthy_since,
            memory.maintenance_since,
            memory.last_cycle_at,
        )

        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                f"INSERT OR REPLACE INTO health_memory (id, {_HEALTH_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?)", values
            )

        await self._db.write(work)

    async def load_health(self) -> HealthMemory | None:
        def work(connection: sqlite3.Connection) -> HealthMemory | None:
            row = connection.execute(f"SELECT {_HEALTH_COLUMNS} FROM health_memory WHERE id = 1").fetchone()
            if row is None:
                return None
            failed, failed_since, healthy, healthy_since, maintenance_since, last_cycle_at = row
            return HealthMemory(
                int(failed),
                float(failed_since),
                int(healthy),
                float(healthy_since),
                None if maintenance_since is None else float(maintenance_since),
                None if last_cycle_at is None else float(last_cycle_at),
            )

        return await self._db.read(work)

    async def relay_batch(self, limit: int, skip: Sequence[str] = ()) -> list[RelayItem]:
        excluded = list(skip)
        placeholders = ", ".join("?" for _ in excluded)
        condition = f" AND queue_id NOT IN ({placeholders})" if excluded else ""

        def work(connection: sqlite3.Connection) -> list[RelayItem]:
            rows = connection.execute(
                "SELECT queue_id, sender, sha256, trace_header FROM messages WHERE state = ?"
                + condition
                + " ORDER BY received_at, queue_id LIMIT ?",
                (MessageState.RELAY.value, *excluded, limit),
            ).fetchall()
            items = []
            for queue_id, sender, sha256, trace in rows:
                recipients = connection.execute(
                    "SELECT address FROM message_recipients WHERE queue_id = ? AND state = ? ORDER BY position",
                    (queue_id, RecipientState.PENDING.value),
                )
                items.append(
                    RelayItem(
                        str(queue_id), str(sender), tuple(str(r[0]) for r in recipients), str(sha256), bytes(trace)
                    )
                )
            return items

        return await self._db.read(work)

    async def finish_relay(self, queue_id: str, delivered: Sequence[str], failed: Sequence[str]) -> None:
        def work(connection: sqlite3.Connection) -> None:
            row = connection.execute("SELECT state FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
            if row is None or row[0] != MessageState.RELAY.value:
                return
            for addresses, state in ((delivered, RecipientState.DELIVERED), (failed, RecipientState.FAILED)):
                connection.executemany(
                    "UPDATE message_recipients SET state = ? WHERE queue_id = ? AND address = ?",
                    [(state.value, queue_id, address) for address in addresses],
                )
            states = {
                str(r[0])
                for r in connection.execute("SELECT state FROM message_recipients WHERE queue_id = ?", (queue_id,))
            }
            if RecipientState.PENDING.value in states:
                return
            final = MessageState.HELD if RecipientState.FAILED.value in states else MessageState.RELAYED
            connection.execute("UPDATE messages SET state = ? WHERE queue_id = ?", (final.value, queue_id))

        await self._db.write(work)

    async def requeue_relay(self) -> int:
        def work(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "UPDATE messages SET state = ? WHERE state = ?", (MessageState.QUEUED.value, MessageState.RELAY.value)
            )
            return int(cursor.rowcount)

        return await self._db.write(work)
